"""Checks of method constructor arguments, shared by every method.

Each check takes one or more arguments by name, ``positive_ints(hidden_dim=h, out_dim=d)``, and
raises ``ValueError`` naming the first argument that fails, what was expected and the values
given, so that ``--set hidden_dim=0`` fails with one clear line before anything is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def _is_number(value: Any) -> bool:
    """A finite int or float: an infinite temperature or a NaN weight trains nothing."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(values: dict[str, Any], ok: Callable[[Any], bool], expected: str) -> None:
    bad = next((name for name, value in values.items() if not ok(value)), None)
    if bad is None:
        return
    message = f"{bad} must be {expected}, got {values[bad]!r}"
    if len(values) > 1:  # the arguments checked together: the bad one next to its siblings
        message += f" (given {', '.join(f'{name}={value!r}' for name, value in values.items())})"
    raise ValueError(message)


def int_at_least(minimum: int, **values: Any) -> None:
    """Accept ints >= ``minimum`` (layer counts, numbers of views)."""
    _check(
        values,
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
        f"an int >= {minimum}",
    )


def positive_ints(**values: Any) -> None:
    """Accept ints >= 1 (widths, queue sizes)."""
    int_at_least(1, **values)


def positive(**values: Any) -> None:
    """Accept finite numbers > 0 (temperatures)."""
    _check(values, lambda v: _is_number(v) and v > 0, "a finite number > 0")


def non_negative(**values: Any) -> None:
    """Accept finite numbers >= 0 (loss weights, epochs)."""
    _check(values, lambda v: _is_number(v) and v >= 0, "a finite number >= 0")


def probability(**values: Any) -> None:
    """Accept numbers in [0, 1] (EMA momenta)."""
    _check(values, lambda v: _is_number(v) and 0.0 <= v <= 1.0, "in [0, 1]")


__all__ = ["int_at_least", "non_negative", "positive", "positive_ints", "probability"]

"""Checks of ``TrainConfig`` values: each raises ValueError naming the field, value and expectation.

A check is ``check(field name, value) -> None``; ``contrastkit.training.config`` gives each field
its own, and ``check_config`` runs them all. Unset values (``None``) pass every number check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Check = Callable[[str, Any], None]  # check(field name, value) raises ValueError


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    if value is None:
        return
    bad = isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    if bad or value <= 0 or (integer and int(value) != value):
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def positive_int(name: str, value: Any) -> None:
    """Accept None or an integer > 0."""
    _positive(name, value, integer=True)


def positive(name: str, value: Any) -> None:
    """Accept None or a finite number > 0."""
    _positive(name, value)


def non_negative(name: str, value: Any) -> None:
    """Accept None or a number >= 0."""
    if value is not None and not (isinstance(value, int | float) and value >= 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def batch_of_pairs(name: str, value: Any) -> None:
    """Accept None or an integer >= 2 (a sample needs another one as its negative)."""
    _positive(name, value, integer=True)
    if value is not None and value < 2:
        raise ValueError(f"{name} must be at least 2 (negatives), got {value}")


def one_of(valid: tuple[str, ...] | Callable[[], tuple[str, ...]]) -> Check:
    """Return the check that accepts the names ``valid`` (or ``valid()``) holds."""

    def check(name: str, value: Any) -> None:
        names = valid() if callable(valid) else valid
        if value not in names:
            raise ValueError(f"unknown {name} {value!r}; expected one of: {', '.join(names)}")

    return check


def method_names() -> tuple[str, ...]:
    """Return the keys of ``contrastkit.methods.METHODS``, sorted."""
    from contrastkit.methods import METHODS  # torch: only when a config is checked

    return tuple(sorted(METHODS))


def device_name(name: str, value: Any) -> None:
    """Accept auto, cpu, cuda, cuda:N or mps."""
    if not (value in ("auto", "cpu", "cuda", "mps") or str(value).startswith("cuda:")):
        raise ValueError(f"{name} must be auto, cpu, cuda, cuda:N or mps, got {value!r}")


def table(name: str, value: Any) -> None:
    """Accept a dict (a TOML table)."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a table/dict, got {value!r}")


__all__ = [
    "Check",
    "batch_of_pairs",
    "device_name",
    "method_names",
    "non_negative",
    "one_of",
    "positive",
    "positive_int",
    "table",
]

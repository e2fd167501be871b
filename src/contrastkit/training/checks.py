"""Checks of ``TrainConfig`` values: each raises ValueError naming the field, value and expectation.

A check is ``check(field name, value) -> None``; ``contrastkit.training.config`` gives each field
its own, and ``check_config`` runs them all. Unset values (``None``) pass every number check.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Any

Check = Callable[[str, Any], None]  # check(field name, value) raises ValueError


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    if value is None:
        return
    bad = not _is_number(value) or not math.isfinite(value)
    if bad or value <= 0 or (integer and int(value) != value):
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def positive_int(name: str, value: Any) -> None:
    """Accept None or an integer > 0."""
    _positive(name, value, integer=True)


def positive(name: str, value: Any) -> None:
    """Accept None or a finite number > 0."""
    _positive(name, value)


MAX_SEED = 2**63 - 1  # torch.manual_seed takes a signed or unsigned 64-bit integer


def seed_value(name: str, value: Any) -> None:
    """Accept an integer in [0, 2**63 - 1] (what every generator the runs seed takes).

    Values that are not integers are left to the type check ("must be an integer").
    """
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be an integer from 0 to 2**63 - 1, got {value!r}")


def non_negative(name: str, value: Any) -> None:
    """Accept None or a finite number >= 0."""
    if value is None:
        return
    if not (_is_number(value) and value >= 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


_KINDS: dict[Any, tuple[str, Callable[[Any], bool]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a finite number", lambda v: _is_number(v) and math.isfinite(v)),
    str: ("a string", lambda v: isinstance(v, str)),
    dict: ("a table/dict", lambda v: isinstance(v, dict)),
}


_PLURALS = {bool: "true/false values", int: "integers", float: "finite numbers", str: "strings"}


def _kind(annotation: Any) -> tuple[str, Callable[[Any], bool]] | None:
    """Return (what it is called, its test) for one annotation (``list[int]`` tests elements)."""
    origin = typing.get_origin(annotation) or annotation
    if origin is not list:
        return _KINDS.get(origin)
    (item,) = typing.get_args(annotation) or (Any,)
    item = typing.get_origin(item) or item
    if item not in _KINDS:
        return "a list", lambda v: isinstance(v, list | tuple)
    ok = _KINDS[item][1]
    return f"a list of {_PLURALS.get(item, 'tables/dicts')}", (
        lambda v: isinstance(v, list | tuple) and all(ok(x) for x in v)
    )


def of_type(name: str, value: Any, annotation: Any) -> None:
    """Accept a value of the field's annotated type (``int | None``, ``dict[str, Any]``, ...).

    Where a value enters (TOML, config.json, flags) a string is not a number and ``"no"`` is not
    false: the value must have the type itself, and a float must be finite.

    Raises:
        ValueError: naming the field, the value and the accepted type.
    """
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    kinds = [typing.get_origin(a) or a for a in (options or (annotation,))]
    if value is None and type(None) in kinds:
        return
    accepted = [kind for a in (options or (annotation,)) if (kind := _kind(a)) is not None]
    if not any(ok(value) for _, ok in accepted):
        expected = " or ".join(text for text, _ in accepted)
        if type(None) in kinds:
            expected += " (or unset)"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


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


__all__ = [
    "MAX_SEED",
    "Check",
    "batch_of_pairs",
    "device_name",
    "method_names",
    "non_negative",
    "of_type",
    "one_of",
    "positive",
    "positive_int",
    "seed_value",
]

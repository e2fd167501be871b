"""Declaring a ``TrainConfig`` field once: its default, help, check, flag and resume rule.

``setting(...)`` puts a ``Setting`` into the dataclass field's metadata; the command line, the
checks and the resume whitelist (``contrastkit.training.config``) read it from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from typing import Any

from contrastkit.training.checks import Check


@dataclass(frozen=True)
class Flag:
    """How a field appears on the command line of ``contrastkit train``.

    Attributes:
        name: the flag (None: ``--field-name``).
        sets: for a switch, the value it gives the field (``--no-eval`` sets ``eval`` to False);
            None for a flag that takes a value.
        help: the switch's own help text (None: the field's).
        default: the "(default: ...)" text where the defaults tables cannot say it.
        replaces: the other half of the same setting: a recipe's value for it is dropped when
            only this flag is given (``--epochs`` beats a recipe's ``steps``).
    """

    name: str | None = None
    sets: bool | None = None
    help: str | None = None
    default: str | None = None
    replaces: str | None = None


@dataclass(frozen=True)
class Setting:
    """What ``TrainConfig`` knows of a field besides its type and default (its metadata).

    Attributes:
        help: what the field means; ``{default}`` marks where ``--help`` shows the default
            (at the end when absent), which the CLI derives from the defaults tables.
        check: ``check(name, value)`` raises ValueError for a bad value (``checks``).
        flag: the field's command-line flag (None: recipes and the Python API only).
        resumable: ``--resume`` may change it, because it does not change the result.
        changeable: ``--resume`` may change it although it changes the result (the learning
            rate of a diverged run); the change is recorded in ``resumed_changes``.
    """

    help: str
    check: Check | None = None
    flag: Flag | None = None
    resumable: bool = False
    changeable: bool = False


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    check: Check | None = None,
    flag: Flag | bool = False,
    resumable: bool = False,
    changeable: bool = False,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """Declare a ``TrainConfig`` field: its default (or ``factory``), help, check and flag."""
    flag_spec = Flag() if flag is True else flag or None
    meta = {"setting": Setting(help, check, flag_spec, resumable, changeable)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


__all__ = ["Flag", "Setting", "setting"]

"""Reading settings files: TOML recipes (built-in or ``--config``) and a run's ``config.json``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contrastkit.training.config import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_values(path: Path, loads: Callable[[str], Any], *, missing: str, invalid: str) -> Any:
    """Parse a settings file with ``loads`` (``tomllib.loads``, ``json.loads``).

    Raises:
        ValueError: ``missing`` when there is no file; ``invalid (parser error)`` when it does
            does not parse or is not text.
    """
    try:
        return loads(path.read_text())
    except FileNotFoundError as err:
        raise ValueError(missing) from err
    except ValueError as err:  # TOMLDecodeError, JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{invalid} ({err})") from err


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML recipe: a table of ``TrainConfig`` fields (sub-tables for the option dicts).

    Raises:
        ValueError: the file is missing, is not valid TOML, or has unknown keys.
    """
    path = Path(path)
    values = read_values(
        path,
        tomllib.loads,
        missing=f"--config {path}: no such file",
        invalid=f"--config {path}: not valid TOML",
    )
    TrainConfig.from_dict(values, source=f"--config {path}")  # checks the keys
    return values


__all__ = ["load_toml", "read_values"]

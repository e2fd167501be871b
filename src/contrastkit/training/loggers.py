"""Where a run's records go besides ``metrics.jsonl``: the ``logger`` setting.

``"jsonl"`` (the default) writes ``metrics.jsonl`` only. ``"tensorboard"`` also writes every
record to TensorBoard event files in ``RUN/tensorboard/`` (``tensorboard --logdir runs``): the
step records' numbers as ``train/<name>`` (loss, lr, the method's named terms, the collapse
monitor's statistics) and the numbers of other records as ``<event>/<name>`` (the epoch's mean
loss: ``epoch/epoch_loss``), all against the step.
It needs the ``tensorboard`` package (``pip install "contrastkit[tensorboard]"``).

A sink is a callable taking one record (the dict written as one line of ``metrics.jsonl``) with
a ``close()``; ``RunLog`` hands it every record it writes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Protocol

TENSORBOARD_DIR = "tensorboard"
INSTALL_HINT = 'pip install "contrastkit[tensorboard]"'
# record keys that say where a record sits rather than what was measured
_POSITION_KEYS = ("event", "step", "epoch")


class Sink(Protocol):
    """Receives each record ``RunLog`` writes; closed when the run ends."""

    def __call__(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def check_logger(name: str) -> None:
    """Check that the packages ``logger=name`` needs are installed, before any folder is made.

    Raises:
        ValueError: an unknown logger, or tensorboard is not installed (naming the extra).
    """
    if name == "jsonl":
        return
    if name != "tensorboard":
        raise ValueError(f"unknown logger {name!r}; expected one of: jsonl, tensorboard")
    try:
        import tensorboard  # noqa: F401  (SummaryWriter needs it, and fails late without)
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ValueError(
            f"--logger tensorboard needs the tensorboard package: {INSTALL_HINT}"
        ) from None


class TensorBoardSink:
    """Write records as TensorBoard scalars into ``log_dir`` (``RUN/tensorboard``).

    Args:
        log_dir: the folder of the event files (created when missing).
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        from torch.utils.tensorboard import SummaryWriter  # the optional extra, checked before

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def __call__(self, record: dict[str, Any]) -> None:
        """Add the numbers of one step or epoch record at its step."""
        step, event = int(record["step"]), record.get("event", "step")
        group = "train" if event == "step" else event  # epoch/epoch_loss, and any later event
        for key, value in record.items():
            if key in _POSITION_KEYS or isinstance(value, bool):
                continue
            if isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(f"{group}/{key}", value, step)

    def close(self) -> None:
        """Flush the event file and close it."""
        self.writer.close()


def build_sinks(name: str, run_dir: str | os.PathLike) -> list[Sink]:
    """Return the sinks of ``logger=name`` for the run in ``run_dir`` (none for "jsonl").

    Raises:
        ValueError: as ``check_logger``.
    """
    check_logger(name)
    if name == "tensorboard":
        return [TensorBoardSink(Path(run_dir) / TENSORBOARD_DIR)]
    return []


__all__ = [
    "INSTALL_HINT",
    "TENSORBOARD_DIR",
    "Sink",
    "TensorBoardSink",
    "build_sinks",
    "check_logger",
]

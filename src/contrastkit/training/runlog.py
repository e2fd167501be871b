"""What a run reports as it goes: ``metrics.jsonl`` lines and the progress bar.

``metrics.jsonl`` gets one JSON object per logged step (``"event": "step"``: step, epoch, loss,
learning rate, the method's named scalar terms and the collapse monitor's numbers) and one per
epoch end (``"event": "epoch"``: the mean loss of the epoch). Entries of a step's outputs whose
key starts with ``"state/"`` are for ``Method.after_step`` only and are never logged.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from contrastkit import distributed
from contrastkit.methods.base import STATE_PREFIX  # outputs for after_step, never metrics
from contrastkit.training.monitor import CollapseMonitor
from contrastkit.training.state import RunLength, TrainingState


def step_record(
    out: dict[str, Any], step: int, epoch: int, lr: float, monitor: CollapseMonitor
) -> dict[str, Any]:
    """Return the metrics line of a logged step: loss, lr, named terms, collapse statistics.

    Every process must call it: the embedding is gathered from all of them.
    """
    loss = float(out["loss"].detach())
    record = {"event": "step", "step": step, "epoch": epoch, "loss": loss, "lr": lr}
    for key, value in out.items():
        if key in ("loss", "embedding") or key.startswith(STATE_PREFIX):
            continue
        if torch.is_tensor(value) and value.numel() == 1:
            record[key] = float(value)
    embedding = out.get("embedding")
    if embedding is not None:
        embedding = distributed.gather_nograd(embedding)  # the global batch (every process)
    if embedding is not None and embedding.ndim == 2 and embedding.shape[0] >= 2:
        record |= monitor(embedding.float(), step)
    return record


class RunLog:
    """Appends a run's records to ``metrics.jsonl``; a context manager that closes the file.

    Every process keeps one (the step records need every process); only rank 0 passes a path.

    Args:
        path: the ``metrics.jsonl`` to append to, or None to write nothing.
        log_every: a step line every this many steps, and at the first and the last.
        length: the run's length (epoch ends, last step).
    """

    def __init__(self, path: Path | None, log_every: int, length: RunLength) -> None:
        self.log_every, self.length = log_every, length
        self.monitor = CollapseMonitor()
        self._file = open(path if path is not None else os.devnull, "a")  # noqa: SIM115

    def record(self, state: TrainingState, out: dict[str, Any], lr: float) -> float:
        """Log the step ``state.step`` just completed; return its loss (mean over processes).

        Adds the loss to the epoch's running sum (kept in ``state``, so that checkpoints carry
        it), writes the step line when due and, at an epoch's end, the epoch line.
        """
        logged = {k: v for k, v in out.items() if not k.startswith(STATE_PREFIX)}
        logged = distributed.mean_over_processes(logged)  # logged values: mean over processes
        step, per_epoch = state.step, self.length.per_epoch
        loss = float(logged["loss"].detach())
        state.epoch_loss, state.epoch_count = state.epoch_loss + loss, state.epoch_count + 1
        if step % self.log_every == 0 or step in (1, self.length.total):
            self._write(step_record(logged, step, (step - 1) // per_epoch, lr, self.monitor))
        if step % per_epoch == 0:
            mean = state.epoch_loss / state.epoch_count
            epoch = step // per_epoch  # epochs completed
            self._write({"event": "epoch", "step": step, "epoch": epoch, "epoch_loss": mean})
            state.epoch_loss, state.epoch_count = 0.0, 0
        self._file.flush()
        return loss

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()


class Progress:
    """The progress bar of a run (loss, lr, samples/s), shown on rank 0 when stderr is a terminal.

    Args:
        show: False hides it (``--quiet``, other ranks, no terminal).
        length: the run's length.
        start: the step the bar starts at (a resumed run's).
        batch_size: samples per step (for samples/s).
    """

    def __init__(self, show: bool, length: RunLength, start: int, batch_size: int) -> None:
        show = show and sys.stderr.isatty()
        self.bar = tqdm(
            total=length.total, initial=start, unit="step", disable=not show, dynamic_ncols=True
        )
        self.batch_size = batch_size
        self._tick = time.perf_counter()

    def advance(self, loss: float, lr: float) -> None:
        """Move one step on, showing the step's loss and learning rate."""
        rate = self.batch_size / max(time.perf_counter() - self._tick, 1e-9)
        self._tick = time.perf_counter()
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", samples_s=f"{rate:.0f}")
        self.bar.update(1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.bar.close()


__all__ = ["STATE_PREFIX", "Progress", "RunLog", "step_record"]

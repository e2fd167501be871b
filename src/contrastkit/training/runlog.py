"""What a run reports as it goes: ``metrics.jsonl`` lines and the progress on stderr.

``metrics.jsonl`` gets one JSON object per logged step (``"event": "step"``: step, epoch, loss,
learning rate, the method's named scalar terms and the collapse monitor's numbers), one per
epoch end (``"event": "epoch"``: the mean loss of the epoch) and one per online evaluation
(``"event": "eval"``: step and kNN accuracy). Entries of a step's outputs whose key starts with
``"state/"`` are for ``Method.after_step`` only and are never logged.

On a terminal the progress is a tqdm bar; off one (a file, a pipe, ``nohup``, CI, a notebook) it
is one plain line every 5% of the run, so that a run never stays silent for minutes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from contrastkit import distributed
from contrastkit.methods.base import STATE_PREFIX  # outputs for after_step, never metrics
from contrastkit.training.monitor import CollapseMonitor, start_of_run
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


def _start_of(path: Path | None) -> dict[str, float] | None:
    """Return the collapse statistics of the first step already in ``path`` (None: none yet)."""
    if path is None or not Path(path).exists():
        return None
    records = []
    with open(path) as lines:
        for line in itertools.islice(lines, 50):  # the first step line comes first
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
    return start_of_run(records)


class RunLog:
    """Appends a run's records to ``metrics.jsonl``; a context manager that closes the file.

    Every process keeps one (the step records need every process); only rank 0 passes a path.

    Args:
        path: the ``metrics.jsonl`` to append to, or None to write nothing.
        log_every: a step line every this many steps, and at the first and the last.
        length: the run's length (epoch ends, last step).
        sinks: more receivers of every record (``loggers.build_sinks``: TensorBoard), closed
            with the log.
    """

    def __init__(
        self, path: Path | None, log_every: int, length: RunLength, sinks: Sequence = ()
    ) -> None:
        self.log_every, self.length, self.sinks = log_every, length, list(sinks)
        self.monitor = CollapseMonitor(start=_start_of(path))  # a resumed run: its own start
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
        self._flush()
        return loss

    def evaluation(self, step: int, knn: float) -> None:
        """Write the online evaluation after ``step``: its kNN accuracy."""
        self._write({"event": "eval", "step": step, "knn": knn})
        self._flush()

    def _write(self, record: dict[str, Any]) -> None:
        try:
            self._file.write(json.dumps(record) + "\n")
        except OSError as err:  # a full disk: name the file, not just [Errno 28]
            raise OSError(err.errno, f"cannot write {self._file.name}: {err.strerror}") from err
        for sink in self.sinks:
            sink(record)

    def _flush(self) -> None:
        try:
            self._file.flush()
        except OSError as err:
            raise OSError(err.errno, f"cannot write {self._file.name}: {err.strerror}") from err

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()
        for sink in self.sinks:
            sink.close()


def stderr_line(text: str) -> None:
    """Print one progress line to stderr at once (stderr may be a file or a pipe)."""
    print(text, file=sys.stderr, flush=True)


class Progress:
    """The progress of a run on rank 0: a bar on a terminal, a line every 5% elsewhere.

    Both show the step, loss, learning rate, samples/s and the last online kNN accuracy.

    Args:
        show: False shows nothing (``--quiet``, other ranks).
        length: the run's length.
        start: the step the run starts at (a resumed run's).
        batch_size: samples per step (for samples/s).
    """

    LINES = 20  # off a terminal: a line every 1/LINES of the run, and at the first and last step

    def __init__(self, show: bool, length: RunLength, start: int, batch_size: int) -> None:
        terminal = sys.stderr.isatty()
        self.bar = tqdm(
            total=length.total,
            initial=start,
            unit="step",
            disable=not (show and terminal),
            dynamic_ncols=True,
        )
        self.lines = show and not terminal
        self.total, self.step, self.batch_size = length.total, start, batch_size
        self.every = max(1, round(length.total / self.LINES))
        self.knn: float | None = None
        self._tick = self._line_tick = time.perf_counter()
        self._line_step = start

    def evaluated(self, knn: float) -> None:
        """Show ``knn``, the last online kNN accuracy, from now on."""
        self.knn = knn

    def advance(self, loss: float, lr: float) -> None:
        """Move one step on, showing the step's loss and learning rate."""
        now = time.perf_counter()
        rate = self.batch_size / max(now - self._tick, 1e-9)
        self._tick = now
        self.step += 1
        shown = {"loss": f"{loss:.4f}", "lr": f"{lr:.2e}", "samples_s": f"{rate:.0f}"}
        if self.knn is not None:
            shown["knn"] = f"{self.knn:.3f}"
        self.bar.set_postfix(shown)
        self.bar.update(1)
        if self.lines and (self.step % self.every == 0 or self.step in (1, self.total)):
            self._line(loss, lr, now)

    def _line(self, loss: float, lr: float, now: float) -> None:
        steps, self._line_step = self.step - self._line_step, self.step
        rate = steps * self.batch_size / max(now - self._line_tick, 1e-9)  # since the last line
        self._line_tick = now
        knn = "" if self.knn is None else f"  kNN {self.knn:.3f}"
        stderr_line(
            f"step {self.step}/{self.total} ({100 * self.step / self.total:.0f}%)  "
            f"loss {loss:.4f}  lr {lr:.2e}  {rate:.0f} samples/s{knn}"
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.bar.close()


__all__ = ["STATE_PREFIX", "Progress", "RunLog", "stderr_line", "step_record"]

"""Which file each DataLoader worker is reading, so that a worker's death names the file.

A worker that dies while it decodes a photo (a decoder that crashes on a hostile file, the
kernel's out-of-memory killer) makes PyTorch's DataLoader raise a ``RuntimeError`` in the
training process, "DataLoader worker (pid 1234) is killed by signal: ...", wherever that process
is at the time: usually in the training step, not in the loader. ``InFlight`` is a small table in
shared memory, one row per worker, of (pid, sample index), that a worker fills in before it reads
a file; ``worker_death`` turns that ``RuntimeError`` into an ``OSError`` naming the file, which
the command line prints as one line (exit code 2). The photo loader and the training loop both
run inside ``naming_dead_workers``, so the error is named wherever it is raised.

Letters used in shapes: W the number of workers.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager

import torch
from torch.utils.data import get_worker_info

_active: list[InFlight] = []  # the photo loaders running in this process, newest last


class WorkerDiedError(OSError):
    """A DataLoader worker died; the message names the file it was reading."""


class InFlight:
    """A (W, 2) table in shared memory: each worker's pid and the sample it is reading.

    Args:
        names: the data set's file names, by sample index.
        workers: W, the DataLoader's worker processes (0: none; nothing is recorded).
    """

    def __init__(self, names, workers: int) -> None:
        self.names = names
        self.table = torch.full((max(workers, 1), 2), -1, dtype=torch.long).share_memory_()

    def mark(self, index: int) -> None:
        """Record, in a worker, that it now reads sample ``index`` (nothing outside workers)."""
        info = get_worker_info()
        if info is not None:
            self.table[info.id, 0] = os.getpid()
            self.table[info.id, 1] = index

    def files_of(self, pids: set[int]) -> list[str]:
        """Return the files the workers with these pids were reading (every worker's if none)."""
        rows = [(pid, index) for pid, index in self.table.tolist() if index >= 0]
        return [self.names[i] for pid, i in rows if pid in pids or not pids]

    def __enter__(self) -> InFlight:
        _active.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _active.remove(self)


def worker_death(err: BaseException) -> BaseException:
    """Return ``err`` as a ``WorkerDiedError`` naming the file when it says that a DataLoader
    worker of a running photo loader died; otherwise ``err`` itself."""
    text = str(err)
    if not isinstance(err, RuntimeError) or "DataLoader worker" not in text or not _active:
        return err
    listed = re.search(r"pid(?:\(s\))?\s*([\d,\s]+)", text)  # "(pid 12)", "(pid(s) 12, 13)"
    pids = {int(p) for p in re.findall(r"\d+", listed.group(1))} if listed else set()
    files = _active[-1].files_of(pids)
    reading = f"reading {', '.join(map(repr, files))}" if files else "loading photos"
    return WorkerDiedError(
        f"a DataLoader worker died while {reading} ({' '.join(text.split())}): a file its "
        "decoder cannot survive, or the machine ran out of memory; move that file out of the "
        "folder, or lower --num-workers"
    )


@contextmanager
def naming_dead_workers():
    """Raise a DataLoader worker's death, met inside the block, as ``worker_death`` says it."""
    try:
        yield
    except RuntimeError as err:
        explained = worker_death(err)
        if explained is err:
            raise
        raise explained from err


__all__ = ["InFlight", "WorkerDiedError", "naming_dead_workers", "worker_death"]

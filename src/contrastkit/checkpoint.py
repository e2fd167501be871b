"""Checkpoints that are written atomically and loaded without executing code.

A checkpoint is a dict of tensors and plain containers (str, int, float, bool, list, dict, None)
saved with ``torch.save``. It is written to a temporary file in the target folder, flushed to
disk, then renamed over the old file (``os.replace`` is atomic on POSIX and Windows), so a crash
at any moment leaves either the previous checkpoint or the new one, never half of one. It is read
with ``torch.load(..., weights_only=True)``, whose unpickler refuses anything but tensors and
plain containers: a run folder received from someone else cannot run code when opened.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

FORMAT = "contrastkit-checkpoint"
VERSION = 1


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write a file all at once: ``write(fileobj)`` fills a temp file that then replaces ``path``.

    Args:
        path: the destination; its folder must exist.
        write: called with the open temporary file object.
        mode: "wb" for bytes, "w" for text.

    Raises:
        OSError: the folder is not writable or the disk is full; ``path`` is left untouched.
            The message names ``path`` (never the temporary file) and the reason.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _naming(err, path) from err
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a run folder is meant to be shared
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise _naming(err, path) from err
        raise
    _fsync_dir(path.parent)


def _naming(err: OSError, path: Path) -> OSError:
    """Return ``err`` as an OSError of the same errno whose message names ``path``."""
    reason = err.strerror or str(err)
    return OSError(err.errno, f"cannot write {path}: {reason}")


def remove_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Remove the temp files a killed ``atomic_write(path, ...)`` left beside ``path``.

    ``atomic_write`` removes its temp file on every exit path it sees; only a process killed
    mid-write (``kill -9``, power loss) leaves one. Call this where no other writer of ``path``
    can be running (the trainer does when a run resumes). Returns the removed files.
    """
    path = Path(path)
    removed = []
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            removed.append(stale)
    return removed


def _fsync_dir(folder: Path) -> None:
    # make the rename itself durable; not possible on every platform
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save ``state`` (tensors and plain containers only) atomically, tagged as ours.

    Args:
        path: destination file, e.g. ``run_dir / "checkpoint.pt"``.
        state: e.g. ``{"model": ..., "optimizer": ..., "step": int, "config": dict}``.
    """
    payload = {"format": FORMAT, "version": VERSION, **state}
    atomic_write(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` onto the CPU, never executing code.

    Raises:
        ValueError: ``not a contrastkit checkpoint: PATH (reason)`` when the file is missing,
            truncated, corrupted, holds pickled code, or was written by something else.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"not a contrastkit checkpoint: {path} (no such file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupted zip, truncated file, refused global, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"not a contrastkit checkpoint: {path} ({reason[:200]})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"not a contrastkit checkpoint: {path} (no contrastkit format tag)")
    if state.get("version") != VERSION:
        raise ValueError(
            f"not a contrastkit checkpoint: {path} (format version {state.get('version')!r}, "
            f"this contrastkit reads version {VERSION})"
        )
    return state


__all__ = ["FORMAT", "atomic_write", "load_checkpoint", "save_checkpoint"]

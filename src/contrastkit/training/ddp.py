"""The trainer's side of ``torch.distributed``: the process group, DDP, and batch splitting.

The library's collectives (``contrastkit.distributed``) only ask whether a group is running;
this module starts one from the environment ``torchrun`` sets, wraps a method in DDP, and
averages gradients where DDP's hooks do not run (gradient caching). On one process every
function here is a no-op or returns its input.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from contrastkit.distributed import (
    is_distributed,
    is_main_process,
    local_rank,
    rank,
    world_size,
)

log = logging.getLogger(__name__)

BACKENDS = ("auto", "gloo", "nccl")
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# ---------------------------------------------------------------------------------------------
# Process group (the trainer's business)


def resolve_backend(backend: str = "auto") -> str:
    """Return the backend to use, or raise ValueError when it cannot run on this machine.

    Args:
        backend: "auto" (nccl when CUDA GPUs are visible, else gloo), "gloo" or "nccl".
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if not dist.is_available():
        raise ValueError(
            f"backend {backend!r}: this build of torch has no torch.distributed support"
        )
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise ValueError(
                "backend 'nccl' needs CUDA GPUs, but torch.cuda.is_available() is False on "
                "this machine; use --backend gloo (CPU) or --backend auto"
            )
        if not dist.is_nccl_available():
            raise ValueError(
                "backend 'nccl' is not built into this torch; use --backend gloo or auto"
            )
    if backend == "gloo" and not dist.is_gloo_available():
        raise ValueError("backend 'gloo' is not built into this torch; use --backend nccl")
    return backend


def init_from_env(backend: str = "auto", *, timeout: timedelta | None = None) -> bool:
    """Start the process group described by the environment ``torchrun`` sets.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. Without
    ``WORLD_SIZE`` (a plain ``python`` launch) or with ``WORLD_SIZE=1`` nothing is started. The
    backend is checked before anything is started, so a bad one fails on every process alike.
    With nccl, this process uses GPU ``LOCAL_RANK``.

    Args:
        backend: "auto", "gloo" or "nccl" (see ``resolve_backend``).
        timeout: how long a collective may wait for the other processes (torch's default if None).

    Returns:
        True when this call started a process group (call ``shutdown()`` at the end).

    Raises:
        ValueError: unknown or unavailable backend, or an incomplete/invalid environment.
    """
    name = resolve_backend(backend)
    if dist.is_initialized():
        return False
    if int(_env_int("WORLD_SIZE", default=1)) <= 1:
        return False
    missing = [key for key in _ENV if key not in os.environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} not set; launch "
            "with torchrun (e.g. torchrun --nproc_per_node 2 -m contrastkit train ...)"
        )
    world, rank_, local = _env_int("WORLD_SIZE"), _env_int("RANK"), _env_int("LOCAL_RANK")
    if not 0 <= rank_ < world:
        raise ValueError(f"RANK must be in [0, {world}), got {rank_}")
    if name == "nccl":
        if local >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={local} but this machine has {torch.cuda.device_count()} CUDA "
                "devices; start at most one process per GPU (--nproc_per_node)"
            )
        torch.cuda.set_device(local)
    kwargs = {"timeout": timeout} if timeout is not None else {}
    dist.init_process_group(name, **kwargs)
    log.debug("process group: backend %s, rank %d of %d", name, rank_, world)
    return True


def shutdown() -> None:
    """Destroy the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# what gloo and nccl say when a peer's connection is gone (the peer died)
_PEER_GONE = ("connection closed by peer", "connection reset by peer", "broken pipe")


@contextlib.contextmanager
def process_group(backend: str = "auto", *, timeout: timedelta | None = None) -> Iterator[bool]:
    """Run the body inside the process group ``torchrun`` describes (nothing on one process).

    Processes other than rank 0 only log warnings and errors, so that output is not repeated.

    Yields:
        True when a process group with more than one process is running.

    Raises:
        TimeoutError: a collective waited longer than ``timeout`` for another process (stopped,
            dead or stuck), instead of the backend's own error text.
        ConnectionError: a collective found another process gone (it died: its connection
            closed), instead of the backend's own error text.
    """
    started = init_from_env(backend, timeout=timeout)
    logger = logging.getLogger("contrastkit")
    level = logger.level
    if not is_main_process():
        logger.setLevel(logging.WARNING)
    try:
        yield is_distributed()
    except RuntimeError as err:  # gloo and nccl report a failed collective as RuntimeError
        text = str(err).lower()
        if started and any(sign in text for sign in _PEER_GONE):
            raise ConnectionError(
                f"process {rank()} of {world_size()} lost another process in a collective "
                f"({str(err).splitlines()[0].strip()}): it died; every process stops"
            ) from None
        if not started or "timed out" not in text:
            raise
        waited = f"{timeout.total_seconds():g} s" if timeout else "the default timeout"
        raise TimeoutError(
            f"process {rank()} of {world_size()} waited {waited} (--dist-timeout) for the other "
            "processes: one of them is stopped, dead or stuck; every process stops"
        ) from None
    finally:
        logger.setLevel(level)
        if started:
            shutdown()


def _env_int(key: str, default: int | None = None) -> int:
    value = os.environ.get(key)
    if value is None and default is not None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"environment variable {key} must be an integer, got {value!r}") from None


def device_for(device: str | torch.device) -> torch.device:
    """Return the device this process trains on: CUDA devices become ``cuda:LOCAL_RANK``."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and is_distributed():
        return torch.device("cuda", local_rank())
    return device


# ---------------------------------------------------------------------------------------------
# Batches and data


def local_batch_size(global_batch_size: int) -> int:
    """Return the rows each process holds when ``global_batch_size`` is split over processes.

    Raises:
        ValueError: the world size does not divide the global batch (raised on every process,
            before any communication, so nothing hangs).
    """
    world = world_size()
    if global_batch_size % world:
        lower = global_batch_size // world * world
        hint = f"{lower} or {lower + world}" if lower else f"{world}"
        raise ValueError(
            f"batch_size {global_batch_size} is the global batch and must be divisible by the "
            f"world size {world}; use e.g. {hint}"
        )
    return global_batch_size // world


# ---------------------------------------------------------------------------------------------
# Gradients and the model (the trainer's business)


@torch.no_grad()
def average_gradients_(parameters: Iterable[nn.Parameter]) -> None:
    """Average ``.grad`` over processes in place, as DDP does (no-op on one process).

    A missing gradient counts as zero; a parameter gets the average if any process has a
    gradient for it. One all-reduce of all gradients; used where DDP's hooks do not run
    (gradient caching).
    """
    if not is_distributed():
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    present = torch.tensor([float(p.grad is not None) for p in params], device=grads[0].device)
    flat = torch.cat([g.reshape(-1) for g in grads] + [present.to(grads[0].dtype)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    values = flat[: -len(params)].split([p.numel() for p in params])
    for p, value, flag in zip(params, values, flat[-len(params) :].tolist(), strict=True):
        if flag == 0:
            p.grad = None
        elif p.grad is not None:
            p.grad.copy_(value.view_as(p))
        else:
            p.grad = value.view_as(p).clone()


class _StepModule(nn.Module):
    """Expose a method's ``training_step`` as ``forward`` so that DDP can wrap it."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, views: list[Tensor]) -> dict[str, Tensor]:
        return self.method.training_step(views)


def data_parallel(method: nn.Module) -> Callable[[list[Tensor]], dict[str, Tensor]]:
    """Return the function that runs ``method.training_step``, under DDP when distributed.

    DDP broadcasts rank 0's parameters and buffers once (so every process starts identical) and
    averages gradients over processes during ``backward()``. Buffers are not re-broadcast at
    each step: queues and centers are kept identical by the methods, and BatchNorm running
    statistics stay per process (rank 0's are saved) unless ``--sync-bn`` converted the layers
    (``contrastkit.training.sync_batchnorm``). The graph is declared static: parameters that no step
    uses are allowed, but every step must use the same ones (true of every contrastkit method).

    Args:
        method: a ``Method`` already on its device.
    """
    if not is_distributed():
        return method.training_step
    device = next(method.parameters()).device
    ddp = nn.parallel.DistributedDataParallel
    # buffers are synced once at construction, not before every step (the name changed)
    no_resync = "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters
    return ddp(
        _StepModule(method),
        device_ids=[device.index] if device.type == "cuda" else None,
        static_graph=True,  # the same parameters take part in every step; unused ones allowed
        **({"forward_sync_buffers": False} if no_resync else {"broadcast_buffers": False}),
    )

"""Helpers for running under ``torch.distributed``; every one is a no-op on a single process.

Library code asks ``world_size()`` and calls ``gather`` / ``all_reduce_sum``; only the trainer
starts a process group (``process_group()``, from the environment ``torchrun`` sets).

The gradient convention is DDP's. Let L = (1/W) sum_r L_r be the global loss, where L_r is the
loss process r computes (its local rows against the gathered columns, or statistics reduced over
every process). Each process backpropagates its own L_r; the backward pass of ``gather`` and
``all_reduce_sum`` sums the incoming gradients over processes, so the gradient that reaches a
process's local embeddings is exactly W * dL/dz_local. DDP (or ``average_gradients_``) then
averages parameter gradients over the W processes, which gives exactly dL/dtheta: the gradient
of one process holding the whole global batch.

Letters used in shapes: W world size, n rows on this process.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

log = logging.getLogger(__name__)

BACKENDS = ("auto", "gloo", "nccl")
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_SHAPE_SLOTS = 8  # dims compared by the shape check; deeper tensors fold the rest into the last

T = TypeVar("T")


def is_distributed() -> bool:
    """Return True when a process group is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Return the number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """Return this process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def local_rank() -> int:
    """Return this process's rank on its node (``LOCAL_RANK``; 0 when not distributed)."""
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main_process() -> bool:
    """Return True on the process that writes files, logs and progress.

    That is rank 0 of the running process group; with no group (or after it ended), the process
    ``torchrun`` launched as ``RANK=0``, or a plain single process.
    """
    if is_distributed():
        return rank() == 0
    return os.environ.get("RANK", "0").strip() in ("0", "")


def barrier() -> None:
    """Wait until every process gets here (no-op on one process)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: T) -> T:
    """Return rank 0's ``obj`` on every process (a picklable object, e.g. a folder name)."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


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


@contextlib.contextmanager
def process_group(backend: str = "auto", *, timeout: timedelta | None = None) -> Iterator[bool]:
    """Run the body inside the process group ``torchrun`` describes (nothing on one process).

    Processes other than rank 0 only log warnings and errors, so that output is not repeated.

    Yields:
        True when a process group with more than one process is running.
    """
    started = init_from_env(backend, timeout=timeout)
    logger = logging.getLogger("contrastkit")
    level = logger.level
    if not is_main_process():
        logger.setLevel(logging.WARNING)
    try:
        yield is_distributed()
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
# Collectives used by the losses (differentiable) and the methods


def _check_same_shape(x: Tensor, name: str) -> None:
    """Raise ValueError on every process when ``x``'s shape differs between processes."""
    dims = list(x.shape[: _SHAPE_SLOTS - 1])
    rest = x.shape[_SHAPE_SLOTS - 1 :]
    if rest:
        dims.append(int(torch.Size(rest).numel()))
    code = torch.full((_SHAPE_SLOTS + 1,), -1, dtype=torch.int64, device=x.device)
    code[0] = x.ndim
    code[1 : 1 + len(dims)] = torch.tensor(dims, dtype=torch.int64)
    table = [torch.empty_like(code) for _ in range(dist.get_world_size())]
    dist.all_gather(table, code)
    if all(torch.equal(row, table[0]) for row in table):
        return
    shapes = ", ".join(f"rank {r} {_decode(row)}" for r, row in enumerate(table))
    raise ValueError(
        f"{name}: shapes differ across processes ({shapes}); every process must pass the same "
        "shape (same local batch and embedding width)"
    )


def _decode(code: Tensor) -> tuple[int, ...]:
    ndim = int(code[0])
    return tuple(int(v) for v in code[1 : 1 + min(ndim, _SHAPE_SLOTS)])


def gather(x: Tensor, *, name: str = "gathered tensor") -> Tensor:
    """Concatenate ``x`` from every process in rank order, keeping the gradient.

    The shapes are compared first (one tiny all-gather), so a mismatch raises ValueError on
    every process instead of hanging.

    Args:
        x: (n, ...) on this process; every process must pass the same shape.
        name: how error messages call ``x``.

    Returns:
        (W * n, ...); the backward pass sums each slice's gradient over processes and returns
        this process's slice.
    """
    if not is_distributed():
        return x
    _check_same_shape(x, name)
    return _Gather.apply(x)


def all_reduce_sum(x: Tensor, *, name: str = "all-reduced tensor") -> Tensor:
    """Sum ``x`` over processes, keeping the gradient (identity on one process).

    The backward pass sums the incoming gradients over processes (DDP convention).
    """
    if not is_distributed():
        return x
    _check_same_shape(x, name)
    return _AllReduceSum.apply(x)


class _Gather(torch.autograd.Function):
    """All-gather along dim 0; backward: sum the gradients over processes, keep own slice."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)  # (W * n, ...)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        n = grad.shape[0] // dist.get_world_size()
        if _nccl():  # reduce-scatter moves 1/W of the data of an all-reduce
            out = grad.new_empty((n, *grad.shape[1:]))
            dist.reduce_scatter_tensor(out, grad, op=dist.ReduceOp.SUM)
            return out
        grad = grad.clone()  # gloo has no reduce-scatter
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[rank() * n : (rank() + 1) * n]


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; backward: sum the incoming gradients over processes."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


@torch.no_grad()
def all_reduce_mean_(x: Tensor) -> Tensor:
    """Average ``x`` over processes in place, without gradient (e.g. DINO's center)."""
    if is_distributed():
        _check_same_shape(x, "averaged tensor")
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        x /= dist.get_world_size()
    return x


@torch.no_grad()
def gather_nograd(x: Tensor, *, name: str = "gathered tensor") -> Tensor:
    """Concatenate ``x`` from every process without gradient (e.g. keys for a MoCo queue).

    Args:
        x: (n, ...) on this process.

    Returns:
        (W * n, ...) in rank order.
    """
    if not is_distributed():
        return x
    _check_same_shape(x, name)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def mean_over_processes(values: dict[str, Any]) -> dict[str, Any]:
    """Average the scalars of a dict (logged metrics) over processes; every process must call it.

    Numbers and one-element tensors are averaged (tensors come back detached, 0-dim, on their
    device); other entries (e.g. an embedding) are returned unchanged. One all-reduce. Every
    process needs the same scalar keys.
    """
    if not is_distributed():
        return dict(values)
    keys = sorted(k for k, v in values.items() if _is_scalar(v))
    if not keys:
        return dict(values)
    device = torch.device("cuda", torch.cuda.current_device()) if _nccl() else torch.device("cpu")
    numbers = [float(values[k].detach() if torch.is_tensor(values[k]) else values[k]) for k in keys]
    vector = torch.tensor(numbers, dtype=torch.float64, device=device)
    all_reduce_mean_(vector)
    means = dict(zip(keys, vector.tolist(), strict=True))
    out = dict(values)
    for key, mean in means.items():
        value = values[key]
        out[key] = (
            torch.tensor(mean, dtype=value.dtype, device=value.device)
            if torch.is_tensor(value)
            else mean
        )
    return out


def _is_scalar(value: Any) -> bool:
    if torch.is_tensor(value):
        return value.numel() == 1
    return isinstance(value, int | float) and not isinstance(value, bool)


def _nccl() -> bool:
    return dist.get_backend() == "nccl"


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
    (``contrastkit.sync_batchnorm``). The graph is declared static: parameters that no step
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

"""Helpers for running under ``torch.distributed``; every one is a no-op on a single process.

Library code asks ``world_size()`` and calls ``gather`` / ``all_reduce_sum``; only the trainer
starts a process group (``contrastkit.training.ddp.process_group()``, from the environment
``torchrun`` sets).

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

import logging
import os
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

log = logging.getLogger(__name__)

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

"""Helpers for running under ``torch.distributed``; every one is a no-op on a single process.

Library code asks ``world_size()`` and calls ``gather`` / ``all_reduce_sum``; only the trainer
starts a process group. The gradient convention is DDP's: each process's loss is the mean over its
local rows, gradients flowing back through ``gather`` are summed over processes, and DDP then
averages parameter gradients over the W processes, which gives exactly the gradient of the global
mean loss.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.nn import functional as dist_fn


def is_distributed() -> bool:
    """Return True when a process group is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Return the number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """Return this process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def gather(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every process in rank order, keeping the gradient.

    Args:
        x: (n, ...) on this process; every process must pass the same shape.

    Returns:
        (W * n, ...); the backward pass sums each slice's gradient over processes and returns
        this process's slice.
    """
    if not is_distributed():
        return x
    return torch.cat(dist_fn.all_gather(x), dim=0)


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum ``x`` over processes, keeping the gradient (identity on one process)."""
    if not is_distributed():
        return x
    return dist_fn.all_reduce(x, op=dist.ReduceOp.SUM)


@torch.no_grad()
def all_reduce_mean_(x: Tensor) -> Tensor:
    """Average ``x`` over processes in place, without gradient (e.g. DINO's center)."""
    if is_distributed():
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        x /= dist.get_world_size()
    return x

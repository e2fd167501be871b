"""Input checks and precision handling shared by the loss functions.

Only shapes and Python-level arguments are checked: checking tensor values (NaN, signs) would
force a device synchronisation on every step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit import distributed

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_matrix(name: str, x: Tensor, form: str = "(N, D)") -> None:
    """Raise ValueError unless ``x`` is a 2-D tensor with at least one column."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a tensor of shape {form}, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape {form}, got {tuple(x.shape)}")


def check_pair(name1: str, x1: Tensor, name2: str, x2: Tensor, form: str = "(N, D)") -> None:
    """Raise ValueError unless ``x1`` and ``x2`` are 2-D tensors of the same shape."""
    check_matrix(name1, x1, form)
    check_matrix(name2, x2, form)
    if x1.shape != x2.shape:
        raise ValueError(
            f"{name1} and {name2} must have the same shape {form}, "
            f"got {tuple(x1.shape)} and {tuple(x2.shape)}"
        )


def check_min_rows(name: str, x: Tensor, minimum: int, why: str) -> None:
    """Raise ValueError when ``x`` has fewer than ``minimum`` rows over all processes."""
    if x.shape[0] * distributed.world_size() < minimum:
        raise ValueError(
            f"{name} must have at least {minimum} rows over all processes ({why}), "
            f"got shape {tuple(x.shape)}"
        )


def check_positive(name: str, value: float) -> None:
    """Raise ValueError unless the Python number ``value`` is > 0 (tensors are not inspected)."""
    if isinstance(value, Tensor):
        return
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def full_precision(x: Tensor) -> Tensor:
    """Return ``x`` in float32 when it is float16/bfloat16 (losses are computed in float32)."""
    return x.float() if x.dtype in _LOW_PRECISION else x


def no_autocast(x: Tensor) -> torch.autocast:
    """Return a context that turns autocast off on ``x``'s device (losses run in full precision)."""
    return torch.autocast(device_type=x.device.type, enabled=False)

"""Optimizer, parameter groups and learning-rate schedule for the trainer.

The learning rate at step s (0-based) is a pure function of s: a linear warmup from lr / W to lr
over the first W steps, then a half cosine from lr down to ``min_lr_ratio * lr`` at the last step
(or constant). Groups flagged ``"fixed_lr": True`` by a method (SimSiam's predictor) keep their
learning rate. Weight decay is never applied to tensors with ndim <= 1 (biases, norm scales).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from contrastkit.training.config import OPTIMIZERS, SCHEDULES
from contrastkit.training.lars import LARS


def lr_factor(
    step: int, total_steps: int, warmup_steps: int, schedule: str = "cosine", min_ratio: float = 0.0
) -> float:
    """Return the multiplier of the base learning rate at 0-based ``step``.

    Args:
        step: optimizer steps already taken.
        total_steps: length of training.
        warmup_steps: linear warmup length (0: none).
        schedule: "cosine" (decay to ``min_ratio``) or "constant".
        min_ratio: final learning rate as a fraction of the base one.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    decay_steps = max(1, total_steps - warmup_steps - 1)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def split_decay(groups: list[dict], lr: float, weight_decay: float) -> list[dict]:
    """Split each method group into a weight-decayed part (ndim > 1) and a non-decayed part.

    Group keys other than ``params`` (``lr``, ``fixed_lr``, ``weight_decay``, ``name``) are kept;
    ``lr`` and ``weight_decay`` default to the trainer's.
    """
    out = []
    for index, group in enumerate(groups):
        params = [p for p in group["params"] if p.requires_grad]
        options = {k: v for k, v in group.items() if k != "params"}
        options.setdefault("lr", lr)
        options.setdefault("fixed_lr", False)
        options.setdefault("name", f"group{index}")
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        if decay:
            wd = options.get("weight_decay", weight_decay)
            out.append({**options, "params": decay, "weight_decay": wd})
        if no_decay:
            name = f"{options['name']}_no_decay"
            out.append({**options, "params": no_decay, "weight_decay": 0.0, "name": name})
    if not out:
        raise ValueError("the method has no trainable parameters (parameter_groups() is empty)")
    return out


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """Create the optimizer ``name`` ("adamw", "sgd", "lars") over ``model.parameter_groups()``."""
    groups = split_decay(model.parameter_groups(), lr, weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)}")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    schedule: str = "cosine",
    min_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Return a per-step scheduler applying ``lr_factor`` to every group not flagged fixed_lr."""

    def factor_for(group: dict) -> Callable[[int], float]:
        if group.get("fixed_lr"):
            return lambda step: 1.0
        return lambda step: lr_factor(step, total_steps, warmup_steps, schedule, min_ratio)

    factors = [factor_for(g) for g in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factors)


def scheduled_lr(optimizer: torch.optim.Optimizer) -> float:
    """Return the learning rate the schedule sets now: that of the first group it moves.

    Groups flagged ``fixed_lr`` (SimSiam's predictor) are skipped; with only such groups, the
    first group's rate.
    """
    groups = optimizer.param_groups
    return next((g["lr"] for g in groups if not g.get("fixed_lr")), groups[0]["lr"])


__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "build_optimizer",
    "build_scheduler",
    "lr_factor",
    "scheduled_lr",
    "split_decay",
]

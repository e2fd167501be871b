"""Momentum (EMA) encoders: frozen copies, the in-place EMA update and its cosine schedule.

MoCo, BYOL and DINO keep a second copy of the encoder (the key encoder, target or teacher) that
is never trained by gradient: after each optimizer step it moves toward the online network,
``target <- m * target + (1 - m) * online``, with a momentum m close to 1 that BYOL and DINO raise
to 1 along a cosine (Grill et al. 2020, https://arxiv.org/abs/2006.07733, Sec. 3.2).
``EMASchedule`` composes the two: the momentum of a step, and the update of every target with it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """Return a deep copy of ``module`` whose parameters do not require gradients.

    The copy starts with the same weights and buffers as ``module`` and shares no storage with
    it; the optimizer never sees it (``Method.parameter_groups`` keeps only trainable tensors).
    """
    target = copy.deepcopy(module)
    for param in target.parameters():
        param.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move ``target`` toward ``online`` in place: ``t <- momentum * t + (1 - momentum) * o``.

    Parameters are averaged; buffers (BatchNorm running statistics and counters) are copied from
    ``online``, so that the target normalises with the same statistics as the network it follows.

    Args:
        target: the momentum copy (e.g. from ``frozen_copy(online)``).
        online: the network trained by gradient; same architecture as ``target``.
        momentum: in [0, 1]; 1 keeps ``target`` unchanged, 0 copies ``online``.

    Raises:
        ValueError: momentum outside [0, 1], or modules whose parameters or buffers differ in
            names or shapes.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
    target_params = dict(target.named_parameters())
    online_params = dict(online.named_parameters())
    _check_same_tensors("parameters", target_params, online_params)
    target_buffers = dict(target.named_buffers())
    online_buffers = dict(online.named_buffers())
    _check_same_tensors("buffers", target_buffers, online_buffers)

    names = list(target_params)
    t = [target_params[n] for n in names]
    o = [online_params[n].detach() for n in names]
    if t:
        # t + (1 - m) * (o - t) == m * t + (1 - m) * o, fused over all tensors
        torch._foreach_lerp_(t, o, 1.0 - momentum)
    for name, buf in target_buffers.items():
        buf.copy_(online_buffers[name])


def cosine_momentum(step: int, total_steps: int, base: float, final: float = 1.0) -> float:
    """Return the cosine-scheduled momentum at ``step``.

    ``final - (final - base) * (cos(pi * step / total_steps) + 1) / 2``: it equals ``base`` at
    step 0 and rises to ``final`` at ``total_steps`` (BYOL, DINO, MoCo v3). Steps past the end
    keep ``final``.

    Args:
        step: the optimizer step just taken, counted from 0.
        total_steps: the length of training in steps, >= 1.
        base: the momentum at step 0, in [0, 1].
        final: the momentum at the end, in [0, 1].
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps!r}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step!r}")
    for name, value in (("base", base), ("final", final)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} momentum must be in [0, 1], got {value!r}")
    progress = min(step / total_steps, 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


@dataclass(frozen=True)
class EMASchedule:
    """The momentum of an EMA target at each step, and the update of targets with it.

    The momentum follows ``cosine_momentum`` from ``base`` at step 0 to ``final`` at the last
    step; ``final == base`` gives a constant momentum (MoCo v2).

    Args:
        base: the momentum at step 0, in [0, 1].
        final: the momentum at the end of training, in [0, 1].

    Raises:
        ValueError: a momentum outside [0, 1].
    """

    base: float
    final: float = 1.0

    def __post_init__(self) -> None:
        for name, value in (("base", self.base), ("final", self.final)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} momentum must be in [0, 1], got {value!r}")

    def at(self, step: int, total_steps: int) -> float:
        """Return the momentum of the update after ``step`` of ``total_steps`` (at least 1)."""
        return cosine_momentum(step, max(int(total_steps), 1), self.base, self.final)

    def update_(
        self, pairs: Iterable[tuple[nn.Module, nn.Module]], step: int, total_steps: int
    ) -> float:
        """Move each ``target`` of ``(target, online)`` pairs with ``ema_update_``.

        Returns:
            The momentum used, ``self.at(step, total_steps)``.
        """
        momentum = self.at(step, total_steps)
        for target, online in pairs:
            ema_update_(target, online, momentum)
        return momentum


def _check_same_tensors(kind: str, target: dict, online: dict) -> None:
    if target.keys() != online.keys():
        only_t = sorted(set(target) - set(online))[:3]
        only_o = sorted(set(online) - set(target))[:3]
        raise ValueError(
            f"target and online {kind} differ in names: only in target {only_t}, only in "
            f"online {only_o}; expected two copies of the same architecture"
        )
    for name, tensor in target.items():
        if tensor.shape != online[name].shape:
            raise ValueError(
                f"{kind[:-1]} {name!r} has shape {tuple(tensor.shape)} in target but "
                f"{tuple(online[name].shape)} in online; expected identical shapes"
            )


__all__ = ["EMASchedule", "cosine_momentum", "ema_update_", "frozen_copy"]

"""LARS: layer-wise adaptive rate scaling (You et al. 2017), as used by SimCLR, BYOL and DINO.

For each parameter tensor w with gradient g (plus weight decay), the update is scaled by the
trust ratio ``eta * ||w|| / ||g + wd * w||`` before SGD with momentum. Biases and normalisation
parameters (tensors with ndim <= 1) are left out of the adaptation, as in SimCLR and BYOL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


class LARS(torch.optim.Optimizer):
    """SGD with momentum and a per-tensor trust ratio.

    Args:
        params: parameters or parameter groups.
        lr: base learning rate.
        momentum: heavy-ball momentum.
        weight_decay: L2 penalty added to the gradient before the trust ratio.
        trust_coefficient: eta, 0.001 in the paper.
        eps: added to the denominator of the trust ratio.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
    ) -> None:
        if lr <= 0 or momentum < 0 or weight_decay < 0 or trust_coefficient <= 0:
            raise ValueError(
                "LARS needs lr > 0, momentum >= 0, weight_decay >= 0, trust_coefficient > 0; got "
                f"lr={lr}, momentum={momentum}, weight_decay={weight_decay}, "
                f"trust_coefficient={trust_coefficient}"
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
            "eps": eps,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Apply one update to every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad
                if p.ndim > 1:
                    if group["weight_decay"]:
                        update = update.add(p, alpha=group["weight_decay"])
                    param_norm, update_norm = p.norm(), update.norm()
                    trust = torch.where(
                        (param_norm > 0) & (update_norm > 0),
                        group["trust_coefficient"] * param_norm / (update_norm + group["eps"]),
                        torch.ones_like(param_norm),
                    )
                    update = update.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = update.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(update)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


__all__ = ["LARS"]

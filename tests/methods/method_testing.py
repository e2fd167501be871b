"""Helpers shared by the method tests: tiny backbones, random views, one optimizer step."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.models.backbones import build_backbone


def tiny_cnn(image_size: int = 16) -> nn.Module:
    """Return a small CNN (feature_dim 16) seeded independently of the test order."""
    torch.manual_seed(0)
    return build_backbone("cnn", in_channels=3, image_size=image_size, width=4)


def random_views(n_views: int = 2, batch: int = 8, size: int = 16, seed: int = 1) -> list:
    """Return ``n_views`` random image batches (B, 3, size, size)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(batch, 3, size, size, generator=generator) for _ in range(n_views)]


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """Return a copy of every parameter of ``module``."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: nn.Module) -> set[str]:
    """Return the names of ``module``'s parameters that differ from ``before``."""
    return {n for n, p in module.named_parameters() if not torch.equal(before[n], p.detach())}


def optimizer_step(method, views, *, step: int = 0, total: int = 10, lr: float = 0.1) -> dict:
    """Run one trainer-like step without ``after_step``: forward, backward, hook, SGD step."""
    params = [p for group in method.parameter_groups() for p in group["params"]]
    optimizer = torch.optim.SGD(params, lr=lr)
    optimizer.zero_grad(set_to_none=True)
    out = method.training_step(views)
    out["loss"].backward()
    method.before_optimizer_step(step)
    optimizer.step()
    return out


def trainable_ids(method) -> set[int]:
    """Return the ids of every tensor the method hands to the optimizer."""
    return {id(p) for group in method.parameter_groups() for p in group["params"]}

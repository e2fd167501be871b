"""Projection, prediction and DINO heads with the papers' default sizes.

A head maps a representation h (B, F) to the space where the loss is computed; it is thrown away
after training. Letters: B batch, F representation width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm


def mlp(
    dims: list[int] | tuple[int, ...],
    *,
    batch_norm: bool = True,
    last_batch_norm: bool = False,
    last_bias: bool = True,
    activation: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """Build a multi-layer perceptron ``dims[0] -> ... -> dims[-1]``.

    Hidden layers are ``Linear -> [BatchNorm1d] -> activation``; a Linear followed by batch norm
    has no bias (the norm's shift replaces it).

    Args:
        dims: layer widths, at least two (input and output).
        batch_norm: batch-normalise the hidden layers.
        last_batch_norm: end with an affine-free BatchNorm1d (SimSiam / MoCo v3 projectors).
        last_bias: give the last Linear a bias.
        activation: the hidden activation class (nn.ReLU; DINO uses nn.GELU).

    Returns:
        An ``nn.Sequential`` mapping (B, dims[0]) to (B, dims[-1]).
    """
    dims = list(dims)
    if len(dims) < 2 or any(not isinstance(d, int) or d <= 0 for d in dims):
        raise ValueError(f"dims must hold at least two positive ints, got {dims!r}")
    layers: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-2], dims[1:-1], strict=True):
        layers.append(nn.Linear(d_in, d_out, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(d_out))
        layers.append(activation())
    layers.append(nn.Linear(dims[-2], dims[-1], bias=last_bias and not last_batch_norm))
    if last_batch_norm:
        layers.append(nn.BatchNorm1d(dims[-1], affine=False))
    return nn.Sequential(*layers)


def _check_layers(num_layers: int, minimum: int) -> None:
    if not isinstance(num_layers, int) or num_layers < minimum:
        raise ValueError(f"num_layers must be an int >= {minimum}, got {num_layers!r}")


class ProjectionHead(nn.Module):
    """SimCLR's projection head g: Linear-BN-ReLU-Linear (Chen et al. 2020).

    ``num_layers=3`` gives SimCLR v2's deeper head. Maps (B, in_dim) to (B, out_dim).
    """

    def __init__(
        self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 128, num_layers: int = 2
    ) -> None:
        super().__init__()
        _check_layers(num_layers, 1)
        self.layers = mlp([in_dim, *[hidden_dim] * (num_layers - 1), out_dim])

    def forward(self, h: Tensor) -> Tensor:
        return self.layers(h)


class PredictionHead(nn.Module):
    """BYOL / SimSiam predictor q: a 2-layer bottleneck MLP, Linear-BN-ReLU-Linear.

    Defaults are BYOL's (256 -> 4096 -> 256); SimSiam uses in_dim=2048, hidden_dim=512,
    out_dim=2048. Maps (B, in_dim) to (B, out_dim).
    """

    def __init__(self, in_dim: int = 256, hidden_dim: int = 4096, out_dim: int = 256) -> None:
        super().__init__()
        self.layers = mlp([in_dim, hidden_dim, out_dim])

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(z)


def barlow_projector(in_dim: int, dims: tuple[int, ...] = (8192, 8192, 8192)) -> nn.Sequential:
    """Build the Barlow Twins / VICReg projector: (Linear-BN-ReLU) x 2, then Linear, no bias.

    Both papers use three layers of 8192 units; the loss standardises the output itself.
    Maps (B, in_dim) to (B, dims[-1]).
    """
    return mlp([in_dim, *dims], last_bias=False)


class DINOHead(nn.Module):
    """DINO's head: MLP with GELU, L2-normalised bottleneck, weight-normalised prototypes.

    ``h -> mlp -> normalize -> last_layer`` with the last layer a bias-free Linear(bottleneck,
    out_dim) under weight normalisation (Caron et al. 2021). With ``norm_last_layer`` the weight
    norms g are fixed to 1 (not trained), so every prototype is a unit vector; the paper
    recommends it for stability. ``last_layer`` is exposed so a method can freeze it during the
    first epoch. ``batch_norm`` adds BatchNorm after each hidden layer (the official code's
    ``use_bn_in_head``, off by default).

    Maps (B, in_dim) to (B, out_dim) logits.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        out_dim: int = 65536,
        num_layers: int = 3,
        norm_last_layer: bool = True,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_layers(num_layers, 1)
        dims = [in_dim, *[hidden_dim] * (num_layers - 1), bottleneck_dim]
        self.mlp = mlp(dims, batch_norm=batch_norm, activation=nn.GELU)
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:  # no bias before a BatchNorm
                    nn.init.zeros_(module.bias)
        last = nn.Linear(bottleneck_dim, out_dim, bias=False)
        nn.init.trunc_normal_(last.weight, std=0.02)
        self.last_layer = weight_norm(last)  # weight = g * v / ||v||, one g per prototype
        magnitude = self.last_layer.parametrizations.weight.original0  # g: (out_dim, 1)
        with torch.no_grad():
            magnitude.fill_(1.0)
        magnitude.requires_grad_(not norm_last_layer)
        self.norm_last_layer = norm_last_layer

    def forward(self, h: Tensor) -> Tensor:
        x = F.normalize(self.mlp(h), dim=-1)  # (B, bottleneck_dim) on the unit sphere
        return self.last_layer(x)

    def extra_repr(self) -> str:
        return f"norm_last_layer={self.norm_last_layer}"

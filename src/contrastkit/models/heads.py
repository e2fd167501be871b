"""The head builders (``mlp``, ``mlp_head``), SimCLR's projection head and DINO's head.

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


def mlp_head(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    *,
    num_layers: int = 2,
    batch_norm: bool = True,
    last_batch_norm: bool = False,
    last_bias: bool = True,
    activation: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """Build a head of ``num_layers`` linear layers: in_dim -> hidden_dim x (L - 1) -> out_dim.

    Every method builds its projectors and predictors with it: SimCLR's Linear-BN-ReLU-Linear
    (Chen et al. 2020), BYOL / SimSiam predictors (2 layers), the Barlow Twins / VICReg
    projectors (3 layers of 8192, ``last_bias=False``), MoCo v3's projector
    (``last_batch_norm=True``) and DINO's MLP (GELU, then an L2-normalised bottleneck).

    Args:
        in_dim: width F of the input h.
        hidden_dim: width of every hidden layer.
        out_dim: width of the output.
        num_layers: L, linear layers in all (1: a single Linear).
        batch_norm, last_batch_norm, last_bias, activation: as for ``mlp``.

    Returns:
        An ``nn.Sequential`` mapping (B, in_dim) to (B, out_dim).

    Raises:
        ValueError: ``num_layers`` < 1 or a non-positive width.
    """
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
    return mlp(
        [in_dim, *[hidden_dim] * (num_layers - 1), out_dim],
        batch_norm=batch_norm,
        last_batch_norm=last_batch_norm,
        last_bias=last_bias,
        activation=activation,
    )


class ProjectionHead(nn.Module):
    """SimCLR's projection head g: Linear-BN-ReLU-Linear (Chen et al. 2020).

    ``num_layers=3`` gives SimCLR v2's deeper head. Maps (B, in_dim) to (B, out_dim). A module
    (not a bare ``mlp_head``) so that SimCLR checkpoints keep their ``projector.layers.*`` keys.
    """

    def __init__(
        self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 128, num_layers: int = 2
    ) -> None:
        super().__init__()
        self.layers = mlp_head(in_dim, hidden_dim, out_dim, num_layers=num_layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.layers(h)


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
        self.mlp = mlp_head(
            in_dim,
            hidden_dim,
            bottleneck_dim,
            num_layers=num_layers,
            batch_norm=batch_norm,
            activation=nn.GELU,
        )
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

"""Barlow Twins: make the cross-correlation of two views' embeddings the identity.

Letters: N samples on this process, W processes, D embedding width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.losses.checks import check_min_rows, check_pair, full_precision, no_autocast


def _standardise(z: Tensor, total: int, eps: float) -> Tensor:
    """Return z centred and scaled by the batch statistics over all processes (biased variance)."""
    mean = distributed.all_reduce_sum(z.sum(0)) / total  # (D,)
    centred = z - mean
    var = distributed.all_reduce_sum(centred.pow(2).sum(0)) / total  # (D,)
    return centred / torch.sqrt(var + eps)


def barlow_twins_loss(
    z1: Tensor, z2: Tensor, lambda_offdiag: float = 5e-3, *, eps: float = 1e-5
) -> Tensor:
    """Compute the Barlow Twins redundancy-reduction loss.

    Each branch is standardised along the batch (as the official code's affine-free BatchNorm:
    biased variance, ``eps``), ``C = z1n^T z2n / N`` is their (D, D) cross-correlation, and the
    loss is ``sum_i (1 - C_ii)^2 + lambda_offdiag * sum_{i != j} C_ij^2`` (Zbontar et al. 2021,
    https://arxiv.org/abs/2103.03230). With W processes the batch statistics and C are summed
    over processes (with gradient) and divided by the global batch size W * N, as the official
    code does with its synchronised BatchNorm and ``all_reduce(c)``.

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views.
        lambda_offdiag: weight of the off-diagonal (redundancy) term; 5e-3 in the paper.
        eps: added to the variance before the square root.

    Returns:
        Scalar loss (0 for identical, whitened, decorrelated views when eps = 0).
    """
    check_pair("z1", z1, "z2", z2)
    check_min_rows("z1", z1, 2, "batch statistics need 2 samples")
    total = z1.shape[0] * distributed.world_size()
    with no_autocast(z1):
        z1n = _standardise(full_precision(z1), total, eps)
        z2n = _standardise(full_precision(z2), total, eps)
        c = distributed.all_reduce_sum(z1n.T @ z2n) / total  # (D, D)
        on_diag = (1 - c.diagonal()).pow(2).sum()
        off_diag = c.pow(2).sum() - c.diagonal().pow(2).sum()
        return on_diag + lambda_offdiag * off_diag


class BarlowTwinsLoss(nn.Module):
    """Module form of :func:`barlow_twins_loss`; ``forward(z1, z2)``."""

    def __init__(self, lambda_offdiag: float = 5e-3, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.lambda_offdiag, self.eps = lambda_offdiag, eps

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return barlow_twins_loss(z1, z2, self.lambda_offdiag, eps=self.eps)

    def extra_repr(self) -> str:
        return f"lambda_offdiag={self.lambda_offdiag}"

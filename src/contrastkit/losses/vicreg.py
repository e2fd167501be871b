"""VICReg: variance, invariance and covariance regularisation of two views' embeddings.

Letters: N samples on this process, W processes, D embedding width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.losses.checks import (
    check_matrix,
    check_min_rows,
    check_pair,
    full_precision,
    no_autocast,
)


def _centred(z: Tensor) -> tuple[Tensor, int]:
    """Return z minus the mean over all processes' rows, and the global number of rows."""
    total = z.shape[0] * distributed.world_size()
    return z - distributed.all_reduce_sum(z.sum(0)) / total, total


def vicreg_invariance(z1: Tensor, z2: Tensor) -> Tensor:
    """Compute the invariance term: mean squared error between the views, z1, z2: (N, D)."""
    check_pair("z1", z1, "z2", z2)
    with no_autocast(z1):
        return F.mse_loss(full_precision(z1), full_precision(z2))


def vicreg_variance(z: Tensor, eps: float = 1e-4) -> Tensor:
    """Compute the variance term of one branch: mean over dims of relu(1 - sqrt(var + eps)).

    Args:
        z: (N, D); the unbiased variance is taken over the batch of all processes.
        eps: numerical stabiliser inside the square root (1e-4 in the paper).

    Returns:
        Scalar, 0 when every dimension has standard deviation >= 1.
    """
    check_matrix("z", z)
    check_min_rows("z", z, 2, "a variance needs 2 samples")
    with no_autocast(z):
        centred, total = _centred(full_precision(z))
        var = distributed.all_reduce_sum(centred.pow(2).sum(0)) / (total - 1)  # (D,)
        return F.relu(1 - torch.sqrt(var + eps)).mean()


def vicreg_covariance(z: Tensor) -> Tensor:
    """Compute the covariance term of one branch: sum of squared off-diagonal covariances / D.

    Args:
        z: (N, D); the covariance (unbiased) is taken over the batch of all processes.

    Returns:
        Scalar, 0 when the dimensions are uncorrelated.
    """
    check_matrix("z", z)
    check_min_rows("z", z, 2, "a covariance needs 2 samples")
    with no_autocast(z):
        centred, total = _centred(full_precision(z))
        cov = distributed.all_reduce_sum(centred.T @ centred) / (total - 1)  # (D, D)
        return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / z.shape[1]


def vicreg_terms(z1: Tensor, z2: Tensor, eps: float = 1e-4) -> dict[str, Tensor]:
    """Return the unweighted VICReg terms ``invariance``, ``variance``, ``covariance``.

    As in the official code (facebookresearch/vicreg), the variance term is the mean of the two
    branches' terms and the covariance term their sum (the paper's equation sums both).
    """
    check_pair("z1", z1, "z2", z2)
    return {
        "invariance": vicreg_invariance(z1, z2),
        "variance": (vicreg_variance(z1, eps) + vicreg_variance(z2, eps)) / 2,
        "covariance": vicreg_covariance(z1) + vicreg_covariance(z2),
    }


def vicreg_loss(
    z1: Tensor,
    z2: Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    eps: float = 1e-4,
) -> Tensor:
    """Compute the VICReg loss (Bardes et al. 2022, https://arxiv.org/abs/2105.04906).

    ``sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance`` with the terms of
    :func:`vicreg_terms`. With W processes the means, variances and covariances are those of the
    global batch (sums over processes with gradient); the invariance term is per process.

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views.
        sim_coeff: weight of the invariance term (25 in the paper).
        std_coeff: weight of the variance term (25).
        cov_coeff: weight of the covariance term (1).
        eps: stabiliser of the standard deviation (1e-4).

    Returns:
        Scalar loss.
    """
    terms = vicreg_terms(z1, z2, eps)
    return (
        sim_coeff * terms["invariance"]
        + std_coeff * terms["variance"]
        + cov_coeff * terms["covariance"]
    )


class VICRegLoss(nn.Module):
    """Module form of :func:`vicreg_loss`; ``forward(z1, z2)``."""

    def __init__(
        self,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        self.sim_coeff, self.std_coeff, self.cov_coeff, self.eps = (
            sim_coeff,
            std_coeff,
            cov_coeff,
            eps,
        )

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return vicreg_loss(z1, z2, self.sim_coeff, self.std_coeff, self.cov_coeff, self.eps)

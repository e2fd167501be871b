"""Negative cosine similarity: the BYOL / SimSiam prediction loss.

Letters: N batch, D embedding width.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses.checks import check_pair, full_precision, no_autocast


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """Compute the mean over the batch of -cos(p_i, z_i).

    SimSiam (Chen & He 2021, https://arxiv.org/abs/2011.10566) symmetrises it over the two views
    and stops the gradient through z; BYOL's (https://arxiv.org/abs/2006.07733) normalised MSE
    equals ``2 + 2 * negative_cosine``. The caller detaches z (this function does not), so it can
    also serve symmetric uses.

    Args:
        p: (N, D) predictions.
        z: (N, D) targets.

    Returns:
        Scalar in [-1, 1].
    """
    check_pair("p", p, "z", z)
    with no_autocast(p):
        return -F.cosine_similarity(full_precision(p), full_precision(z), dim=1).mean()


class NegativeCosineLoss(nn.Module):
    """Module form of :func:`negative_cosine`; ``forward(p, z)``."""

    def forward(self, p: Tensor, z: Tensor) -> Tensor:
        return negative_cosine(p, z)

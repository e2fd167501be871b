"""Barlow Twins: make the cross-correlation of the two views' projections the identity.

Zbontar et al. 2021, https://arxiv.org/abs/2103.03230. Projections z1, z2 of two views are
standardised over the batch; their (D, D) cross-correlation is pushed to 1 on the diagonal
(invariance) and to 0 off it (redundancy reduction, weighted by lambda = 5e-3). Projector: three
linear layers of 8192, BatchNorm and ReLU between them, no bias on the last.

What prevents collapse: the off-diagonal term decorrelates the output dimensions, and the batch
standardisation makes a constant output impossible to reward.

Letters used in shapes: B batch size, D projection width.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses import barlow_twins_loss
from contrastkit.methods.base import Method
from contrastkit.methods.checks import non_negative, positive_ints
from contrastkit.methods.views import encode_pair
from contrastkit.models.heads import mlp_head


class BarlowTwins(Method):
    """Barlow Twins.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        hidden_dim: width of the projector's hidden layers.
        out_dim: width of the projection.
        projector_layers: linear layers in the projector.
        lambda_offdiag: weight of the off-diagonal (redundancy) term.

    Raises:
        ValueError: a non-positive width, fewer than 1 layer, or a negative lambda.
    """

    view_recipe = "pair"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        hidden_dim: int = 8192,
        out_dim: int = 8192,
        projector_layers: int = 3,
        lambda_offdiag: float = 5e-3,
    ) -> None:
        super().__init__(backbone)
        positive_ints(hidden_dim=hidden_dim, out_dim=out_dim, projector_layers=projector_layers)
        non_negative(lambda_offdiag=lambda_offdiag)
        self.lambda_offdiag = float(lambda_offdiag)
        self.projector = mlp_head(
            backbone.feature_dim, hidden_dim, out_dim, num_layers=projector_layers, last_bias=False
        )

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return ``loss`` and ``embedding`` (x1's normalised projection) for [x1, x2] (B, ...)."""
        z1, z2 = encode_pair(views, "barlow_twins", self.backbone, self.projector)  # 2 x (B, D)
        loss = barlow_twins_loss(z1, z2, lambda_offdiag=self.lambda_offdiag)
        return {"loss": loss, "embedding": F.normalize(z1.detach(), dim=1)}


__all__ = ["BarlowTwins"]

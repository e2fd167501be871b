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
from contrastkit.methods.views import unpack_pair
from contrastkit.models.heads import mlp


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
        if min(hidden_dim, out_dim) < 1 or projector_layers < 1:
            raise ValueError(
                "hidden_dim, out_dim and projector_layers must be positive ints, got "
                f"{hidden_dim!r}, {out_dim!r}, {projector_layers!r}"
            )
        if lambda_offdiag < 0:
            raise ValueError(f"lambda_offdiag must be >= 0, got {lambda_offdiag!r}")
        self.lambda_offdiag = float(lambda_offdiag)
        dims = [backbone.feature_dim] + [hidden_dim] * (projector_layers - 1) + [out_dim]
        self.projector = mlp(dims, last_bias=False)

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return the Barlow Twins loss of the two views' projections.

        Args:
            views: [x1, x2], each (B, ...).

        Returns:
            ``loss``, ``embedding`` (the detached, normalised projection of x1, (B, D)).
        """
        x1, x2 = unpack_pair(views, "barlow_twins")
        z1 = self.projector(self.backbone(x1))  # (B, D)
        z2 = self.projector(self.backbone(x2))
        loss = barlow_twins_loss(z1, z2, lambda_offdiag=self.lambda_offdiag)
        return {"loss": loss, "embedding": F.normalize(z1.detach(), dim=1)}


__all__ = ["BarlowTwins"]

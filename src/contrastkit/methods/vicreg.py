"""VICReg: variance, invariance and covariance regularisation of the two views' embeddings.

Bardes, Ponce & LeCun 2022, https://arxiv.org/abs/2105.04906. An expander (three linear layers
of 8192, BatchNorm and ReLU between them) maps h to z; the loss is 25 * invariance (mean squared
error between the views) + 25 * variance (hinge keeping each dimension's std above 1) + 1 *
covariance (squared off-diagonal covariances / D).

What prevents collapse: the variance term forbids a constant output outright; the covariance term
forbids dimensions that copy each other.

Letters used in shapes: B batch size, D expander width.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses import vicreg_terms
from contrastkit.methods.base import Method
from contrastkit.methods.checks import non_negative, positive_ints
from contrastkit.methods.views import encode_pair
from contrastkit.models.heads import mlp_head


class VICReg(Method):
    """VICReg.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        sim_coeff: weight of the invariance term.
        std_coeff: weight of the variance term.
        cov_coeff: weight of the covariance term.
        hidden_dim: width of the expander's hidden layers.
        out_dim: width of the expander's output.
        projector_layers: linear layers in the expander.

    Raises:
        ValueError: a non-positive width or layer count, or a negative coefficient.
    """

    view_recipe = "pair"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        hidden_dim: int = 8192,
        out_dim: int = 8192,
        projector_layers: int = 3,
    ) -> None:
        super().__init__(backbone)
        positive_ints(hidden_dim=hidden_dim, out_dim=out_dim, projector_layers=projector_layers)
        coeffs = {"sim_coeff": sim_coeff, "std_coeff": std_coeff, "cov_coeff": cov_coeff}
        non_negative(**coeffs)
        self.coeffs = {k: float(v) for k, v in coeffs.items()}
        self.projector = mlp_head(
            backbone.feature_dim, hidden_dim, out_dim, num_layers=projector_layers, last_bias=False
        )

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return the weighted VICReg loss and its three unweighted terms.

        Args:
            views: [x1, x2], each (B, ...).

        Returns:
            ``loss``, ``invariance``, ``variance``, ``covariance`` (detached, unweighted),
            ``embedding`` (the detached, normalised projection of x1, (B, D)).
        """
        z1, z2 = encode_pair(views, "vicreg", self.backbone, self.projector)  # 2 x (B, D)
        terms = vicreg_terms(z1, z2)
        loss = (
            self.coeffs["sim_coeff"] * terms["invariance"]
            + self.coeffs["std_coeff"] * terms["variance"]
            + self.coeffs["cov_coeff"] * terms["covariance"]
        )
        return {
            "loss": loss,
            **{name: value.detach() for name, value in terms.items()},
            "embedding": F.normalize(z1.detach(), dim=1),
        }


__all__ = ["VICReg"]

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
from contrastkit.methods.views import unpack_pair
from contrastkit.models.heads import mlp


class VICReg(Method):
    """VICReg.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        hidden_dim: width of the expander's hidden layers.
        out_dim: width of the expander's output.
        projector_layers: linear layers in the expander.
        sim_coeff: weight of the invariance term.
        std_coeff: weight of the variance term.
        cov_coeff: weight of the covariance term.

    Raises:
        ValueError: a non-positive width or layer count, or a negative coefficient.
    """

    view_recipe = "pair"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        hidden_dim: int = 8192,
        out_dim: int = 8192,
        projector_layers: int = 3,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
    ) -> None:
        super().__init__(backbone)
        if min(hidden_dim, out_dim, projector_layers) < 1:
            raise ValueError(
                "hidden_dim, out_dim and projector_layers must be positive ints, got "
                f"{hidden_dim!r}, {out_dim!r}, {projector_layers!r}"
            )
        coeffs = {"sim_coeff": sim_coeff, "std_coeff": std_coeff, "cov_coeff": cov_coeff}
        for name, value in coeffs.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self.coeffs = {k: float(v) for k, v in coeffs.items()}
        dims = [backbone.feature_dim] + [hidden_dim] * (projector_layers - 1) + [out_dim]
        self.projector = mlp(dims, last_bias=False)

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return the weighted VICReg loss and its three unweighted terms.

        Args:
            views: [x1, x2], each (B, ...).

        Returns:
            ``loss``, ``invariance``, ``variance``, ``covariance`` (detached, unweighted),
            ``embedding`` (the detached, normalised projection of x1, (B, D)).
        """
        x1, x2 = unpack_pair(views, "vicreg")
        z1 = self.projector(self.backbone(x1))  # (B, D)
        z2 = self.projector(self.backbone(x2))
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

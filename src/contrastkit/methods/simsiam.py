"""SimSiam: two branches of the same network, a predictor, and a stop-gradient.

Chen & He 2021, https://arxiv.org/abs/2011.10566. Loss 0.5 * D(p1, stopgrad(z2)) + 0.5 * D(p2,
stopgrad(z1)) with D the negative cosine. Projector: 3 layers of 2048 with BatchNorm on every
layer, the output included; predictor: 2048 -> 512 -> 2048 (a bottleneck) without BatchNorm at its
output. The predictor's learning rate is not decayed (Sec. 4.4: "fixed lr for predictor").

What prevents collapse: the stop-gradient alone, no negatives and no momentum encoder. The paper
shows (Fig. 2) that without it the output collapses to a constant at once; ``stop_gradient=False``
reproduces that experiment (with ``last_batch_norm=False``: a BatchNorm on the output keeps every
dimension's batch variance at 1 and so hides the collapse behind a few surviving directions).

Letters used in shapes: B batch size, D projection width.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses import negative_cosine
from contrastkit.methods.base import Method
from contrastkit.methods.checks import positive_ints
from contrastkit.methods.views import encode_pair
from contrastkit.models.heads import mlp_head


class SimSiam(Method):
    """Simple Siamese networks.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        hidden_dim: width of the projector's hidden layers.
        out_dim: width of the projection z (and of the predictor's output).
        pred_hidden_dim: the predictor's bottleneck width.
        projector_layers: linear layers in the projector (3 for ImageNet, 2 for CIFAR).
        stop_gradient: detach the target branch (the method); False shows the collapse.
        fixed_predictor_lr: keep the predictor's learning rate constant.
        last_batch_norm: end the projector with BatchNorm (the paper's default). That norm
            alone already forbids a constant output, so the collapse experiment turns it off
            (SimSiam trains as well without it, paper Table 4) and compares ``stop_gradient``
            True and False on the same network.

    Raises:
        ValueError: a non-positive width or fewer than 1 projector layer.
    """

    view_recipe = "pair"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        hidden_dim: int = 2048,
        out_dim: int = 2048,
        pred_hidden_dim: int = 512,
        projector_layers: int = 3,
        stop_gradient: bool = True,
        fixed_predictor_lr: bool = True,
        last_batch_norm: bool = True,
    ) -> None:
        super().__init__(backbone)
        positive_ints(
            hidden_dim=hidden_dim,
            out_dim=out_dim,
            pred_hidden_dim=pred_hidden_dim,
            projector_layers=projector_layers,
        )
        self.stop_gradient = bool(stop_gradient)
        self.fixed_predictor_lr = bool(fixed_predictor_lr)
        self.projector = mlp_head(
            backbone.feature_dim,
            hidden_dim,
            out_dim,
            num_layers=projector_layers,
            last_batch_norm=last_batch_norm,
        )
        self.predictor = mlp_head(out_dim, pred_hidden_dim, out_dim)  # a bottleneck

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return ``0.5 * (D(p1, z2) + D(p2, z1))``, between -1 and 1.

        Args:
            views: [x1, x2], each (B, ...).

        Returns:
            ``loss``, ``embedding`` (the detached projection of x1, (B, D)).
        """
        z1, z2 = encode_pair(views, "simsiam", self.backbone, self.projector)  # 2 x (B, D)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        t1, t2 = (z1.detach(), z2.detach()) if self.stop_gradient else (z1, z2)
        loss = 0.5 * (negative_cosine(p1, t2) + negative_cosine(p2, t1))
        return {"loss": loss, "embedding": F.normalize(z1.detach(), dim=1)}

    def parameter_groups(self) -> list[dict]:
        """Return the encoder+projector group and the predictor group (fixed learning rate)."""
        predictor = list(self.predictor.parameters())
        ids = {id(p) for p in predictor}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [
            {"params": rest},
            {"params": predictor, "fixed_lr": self.fixed_predictor_lr},
        ]


__all__ = ["SimSiam"]

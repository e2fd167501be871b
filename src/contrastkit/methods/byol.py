"""BYOL: an online network predicts the projection of a slowly moving target network.

Grill et al. 2020, https://arxiv.org/abs/2006.07733. The online branch is backbone f, projector g
and predictor q; the target branch is an EMA copy of f and g (tau 0.996 rising to 1 along a
cosine, Sec. 3.2). The loss is 2 - 2 cos(q(g(f(x1))), g'(f'(x2))), symmetrised over the two views,
with the target detached. Projector and predictor: Linear 4096, BatchNorm, ReLU, Linear 256.

What prevents collapse: no negatives at all; the predictor and the stop-gradient on a target that
moves only by EMA (and, in practice, BatchNorm in the heads).

Letters used in shapes: B batch size, D projection width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses import negative_cosine
from contrastkit.methods.base import Method
from contrastkit.methods.checks import positive_ints, probability
from contrastkit.methods.views import predict_and_target
from contrastkit.models.heads import mlp_head
from contrastkit.models.momentum import EMASchedule, frozen_copy


class BYOL(Method):
    """Bootstrap Your Own Latent.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        hidden_dim: hidden width of projector and predictor.
        out_dim: width of the projection.
        momentum: the target's EMA momentum at step 0.
        final_momentum: the momentum at the last step (the cosine schedule's end).
        predictor: use the predictor q (the paper). False makes q the identity, so the online
            projection must match the target's directly: the ablation of Sec. 5, which
            collapses (``contrastkit experiment collapse``).

    Raises:
        ValueError: a non-positive width or a momentum outside [0, 1].
    """

    view_recipe = "asymmetric_pair"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        hidden_dim: int = 4096,
        out_dim: int = 256,
        momentum: float = 0.996,
        final_momentum: float = 1.0,
        predictor: bool = True,
    ) -> None:
        super().__init__(backbone)
        probability(momentum=momentum, final_momentum=final_momentum)
        positive_ints(hidden_dim=hidden_dim, out_dim=out_dim)
        self.base_momentum, self.final_momentum = float(momentum), float(final_momentum)
        self.ema = EMASchedule(self.base_momentum, self.final_momentum)
        self.projector = mlp_head(backbone.feature_dim, hidden_dim, out_dim)
        self.use_predictor = bool(predictor)
        self.predictor = mlp_head(out_dim, hidden_dim, out_dim) if predictor else nn.Identity()
        self.target_backbone = frozen_copy(backbone)
        self.target_projector = frozen_copy(self.projector)
        # optimizer steps taken; saved with the checkpoint so a resumed run logs the same values
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return the symmetrised BYOL loss (between 0 and 8).

        Args:
            views: [x1, x2], each (B, ...), made by two different augmentation recipes.

        Returns:
            ``loss``, ``momentum`` (of the next target update), ``embedding`` (the detached
            online projection of x1, (B, D)).
        """
        online, target = (
            (self.backbone, self.projector),
            (self.target_backbone, self.target_projector),
        )
        z1, (p1, p2), (t1, t2) = predict_and_target(views, "byol", online, self.predictor, target)
        # 2 - 2 cos for each direction; negative_cosine is the mean of -cos
        loss = (2 + 2 * negative_cosine(p1, t2)) + (2 + 2 * negative_cosine(p2, t1))
        return {
            "loss": loss,
            "momentum": torch.tensor(self.ema.at(int(self.steps_done), self.total_steps)),
            "embedding": F.normalize(z1.detach(), dim=1),
        }

    def after_step(self, step: int, total_steps: int, outputs: dict[str, Tensor]) -> None:
        """Move the target toward the online network with the momentum of this step."""
        targets = [(self.target_backbone, self.backbone), (self.target_projector, self.projector)]
        self.ema.update_(targets, step, total_steps)
        self.steps_done.fill_(step + 1)


__all__ = ["BYOL"]

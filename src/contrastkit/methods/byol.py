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
from contrastkit.methods.views import unpack_pair
from contrastkit.models.heads import mlp
from contrastkit.models.momentum import cosine_momentum, ema_update_, frozen_copy


class BYOL(Method):
    """Bootstrap Your Own Latent.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        hidden_dim: hidden width of projector and predictor.
        out_dim: width of the projection.
        momentum: the target's EMA momentum at step 0.
        final_momentum: the momentum at the last step (the cosine schedule's end).

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
    ) -> None:
        super().__init__(backbone)
        for name, value in (("momentum", momentum), ("final_momentum", final_momentum)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if hidden_dim < 1 or out_dim < 1:
            raise ValueError(
                f"hidden_dim and out_dim must be positive ints, got {hidden_dim!r}, {out_dim!r}"
            )
        self.base_momentum = float(momentum)
        self.final_momentum = float(final_momentum)
        self._total_steps = 1
        self.projector = mlp([backbone.feature_dim, hidden_dim, out_dim])
        self.predictor = mlp([out_dim, hidden_dim, out_dim])
        self.target_backbone = frozen_copy(backbone)
        self.target_projector = frozen_copy(self.projector)
        # optimizer steps taken; saved with the checkpoint so a resumed run logs the same values
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def setup(self, total_steps: int, steps_per_epoch: int) -> None:
        """Remember the length of training for the momentum schedule."""
        self._total_steps = max(int(total_steps), 1)

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return the symmetrised BYOL loss (between 0 and 8).

        Args:
            views: [x1, x2], each (B, ...), made by two different augmentation recipes.

        Returns:
            ``loss``, ``momentum`` (of the next target update), ``embedding`` (the detached
            online projection of x1, (B, D)).
        """
        x1, x2 = unpack_pair(views, "byol")
        z1 = self.projector(self.backbone(x1))  # (B, D)
        z2 = self.projector(self.backbone(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        with torch.no_grad():
            t1 = self.target_projector(self.target_backbone(x1))  # (B, D)
            t2 = self.target_projector(self.target_backbone(x2))
        # 2 - 2 cos for each direction; negative_cosine is the mean of -cos
        loss = (2 + 2 * negative_cosine(p1, t2)) + (2 + 2 * negative_cosine(p2, t1))
        return {
            "loss": loss,
            "momentum": torch.tensor(self._momentum_at(int(self.steps_done))),
            "embedding": F.normalize(z1.detach(), dim=1),
        }

    def _momentum_at(self, step: int) -> float:
        return cosine_momentum(
            step, self._total_steps, self.base_momentum, final=self.final_momentum
        )

    def after_step(self, step: int, total_steps: int) -> None:
        """Move the target toward the online network with the momentum of this step."""
        self._total_steps = max(int(total_steps), 1)
        m = self._momentum_at(step)
        ema_update_(self.target_backbone, self.backbone, m)
        ema_update_(self.target_projector, self.projector, m)
        self.steps_done.fill_(step + 1)


__all__ = ["BYOL"]

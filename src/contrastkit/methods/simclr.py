"""SimCLR: two augmented views of each image, and every other view in the batch as a negative.

Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
https://arxiv.org/abs/2002.05709. Backbone f gives the representation h; a projection head g
(Linear, BatchNorm, ReLU, Linear) gives z; the NT-Xent loss (temperature 0.5 in the paper's
CIFAR-10 setting) pulls the two views of a sample together and pushes away the other 2N - 2 views.
After training g is thrown away: ``embed`` returns h.

What prevents collapse: the negatives.

Letters used in shapes: B batch size, F feature width of h, D projection width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit.losses import nt_xent
from contrastkit.methods.base import Method
from contrastkit.methods.checks import positive, positive_ints
from contrastkit.methods.views import unpack_pair
from contrastkit.models.heads import ProjectionHead


class SimCLR(Method):
    """SimCLR with a projection head and the NT-Xent loss.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        hidden_dim: hidden width of the projection head (2048 in the paper).
        out_dim: width D of the projection z (128 in the paper).
        projector_layers: linear layers in the head (2 in SimCLR v1, 3 in v2).
        temperature: tau of NT-Xent (> 0).

    Raises:
        ValueError: non-positive sizes or temperature.
    """

    view_recipe = "pair"
    supports_gradient_cache = True

    def __init__(
        self,
        backbone: nn.Module,
        *,
        hidden_dim: int = 2048,
        out_dim: int = 128,
        projector_layers: int = 2,
        temperature: float = 0.5,
    ) -> None:
        super().__init__(backbone)
        positive_ints(hidden_dim=hidden_dim, out_dim=out_dim, projector_layers=projector_layers)
        positive(temperature=temperature)
        self.temperature = float(temperature)
        self.projector = ProjectionHead(
            backbone.feature_dim, hidden_dim, out_dim, num_layers=projector_layers
        )

    def embed_views(self, views: list[Tensor]) -> list[Tensor]:
        """Project both views: [x1, x2], each (B, ...) -> [z1, z2], each (B, D)."""
        x1, x2 = unpack_pair(views, "simclr")
        # one pass over both views: BatchNorm statistics come from all 2B inputs, as in the paper
        z = self.projector(self.backbone(torch.cat([x1, x2])))  # (2B, D)
        return list(z.chunk(2))

    def loss_from_embeddings(self, zs: list[Tensor]) -> dict[str, Tensor]:
        """Return ``{"loss": NT-Xent(z1, z2), "embedding": z1 detached}`` for [z1, z2] (B, D)."""
        z1, z2 = zs
        return {"loss": nt_xent(z1, z2, self.temperature), "embedding": z1.detach()}

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return the NT-Xent loss of a batch of view pairs [x1, x2], each (B, ...)."""
        return self.loss_from_embeddings(self.embed_views(views))

    @staticmethod
    def num_negatives(batch_size: int) -> int:
        """Return K, the negatives of each anchor in a batch of B pairs: 2B - 2."""
        return 2 * batch_size - 2


__all__ = ["SimCLR"]

"""The supervised yardstick: the same backbone trained with the labels, on the same views.

Not a self-supervised method: a linear head on h is trained with cross-entropy on each sample's
class, through both views of the data's usual two-view recipe (so it sees the same augmented
images, batch and budget as SimCLR). Evaluated as every method is (h = backbone output, kNN,
linear probe), it tells how much of what the labels reach at a budget a method without them
gets. The labels arrive as the last entry of ``views`` (``needs_labels``).

Letters used in shapes: B batch size, F feature width of h, K number of classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.methods.base import Method
from contrastkit.methods.checks import positive_ints
from contrastkit.methods.views import unpack_pair


class Supervised(Method):
    """A backbone and a linear head trained with cross-entropy on the labels.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        num_classes: K, the number of classes (from the data: ``options_from_data``).

    Raises:
        ValueError: a non-positive number of classes.
    """

    view_recipe = "pair"
    needs_labels = True

    def __init__(self, backbone: nn.Module, *, num_classes: int) -> None:
        super().__init__(backbone)
        positive_ints(num_classes=num_classes)
        self.num_classes = int(num_classes)
        self.head = nn.Linear(backbone.feature_dim, self.num_classes)

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return the mean cross-entropy of both views' logits against their labels.

        Args:
            views: ``[x1, x2, y]``: two views (B, ...) of the same samples and their classes
                y (B,) in [0, K).

        Returns:
            ``{"loss", "accuracy"`` (of the training batch), ``"embedding"`` (h of x1)}.
        """
        if len(views) != 3:
            raise ValueError(
                f"supervised expects views [x1, x2, labels], got {len(views)} tensors; its "
                "batches carry labels (Method.needs_labels)"
            )
        x1, x2 = unpack_pair(views[:2], "supervised")
        labels = check_labels(views[2], x1.shape[0], self.num_classes)
        # one pass over both views: BatchNorm statistics come from all 2B inputs, as in SimCLR
        h = self.backbone(torch.cat([x1, x2]))  # (2B, F)
        logits = self.head(h)  # (2B, K)
        targets = labels.repeat(2)  # (2B,)
        loss = F.cross_entropy(logits, targets)
        accuracy = (logits.detach().argmax(dim=1) == targets).float().mean()
        return {"loss": loss, "accuracy": accuracy, "embedding": h[: x1.shape[0]].detach()}

    @classmethod
    def options_from_data(cls, dataset) -> dict:
        """Return ``num_classes`` of a labelled dataset.

        Raises:
            ValueError: the dataset has no labels.
        """
        labels = getattr(dataset, "labels", None)
        if labels is None or len(labels) == 0 or int(torch.as_tensor(labels).max()) < 0:
            name = getattr(dataset, "name", type(dataset).__name__)
            raise ValueError(
                f"--method supervised needs labelled data and --data {name} has no labels; use "
                "toy, digits, shapes, cifar10:PATH or folder:PATH with one folder per class"
            )
        names = getattr(dataset, "class_names", None)
        return {"num_classes": len(names) if names else int(torch.as_tensor(labels).max()) + 1}


def check_labels(labels: Tensor, batch: int, num_classes: int) -> Tensor:
    """Return ``labels`` (B,) as long, or raise ValueError naming what is wrong."""
    if labels.shape != (batch,) or labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"labels must be an integer tensor ({batch},), got {labels.dtype} {tuple(labels.shape)}"
        )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}) (num_classes), got values in [{low}, {high}]"
            + ("; -1 marks an unlabelled sample" if low < 0 else "")
        )
    return labels.long()


__all__ = ["Supervised", "check_labels"]

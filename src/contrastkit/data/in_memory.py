"""A labelled set of same-size RGB images held in memory as uint8 (image folders, CIFAR).

Letters used in shapes: N images, C channels, S side.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torch.utils.data import Dataset


class InMemoryImages(Dataset):
    """Images kept as one uint8 tensor; ``ds[i] -> (x: (C, S, S) float in [0, 1], y: int)``.

    Args:
        images: (N, C, S, S) uint8.
        labels: (N,) class indices, or None for unlabelled data (then y is -1).
        class_names: names of the classes, or None.
        name: the dataset's name, e.g. "cifar10" or "folder".
    """

    kind = "images"

    def __init__(
        self,
        images: Tensor,
        labels: Tensor | None,
        class_names: Sequence[str] | None,
        name: str,
    ) -> None:
        if images.ndim != 4 or images.dtype.is_floating_point:
            raise ValueError(
                f"images must be a uint8 tensor (N, C, S, S), got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if labels is not None and labels.shape != images.shape[:1]:
            raise ValueError(
                f"labels must be (N,) = ({len(images)},), got shape {tuple(labels.shape)}"
            )
        self.images = images
        self.labels = None if labels is None else labels.long()
        self.class_names = None if class_names is None else list(class_names)
        self.name = name
        self.input_shape = tuple(images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        label = -1 if self.labels is None else int(self.labels[index])
        return self.images[index].float().div_(255.0), label


__all__ = ["InMemoryImages"]

"""Images read from storage on demand: memory does not grow with the number of images.

``FileImages`` is the base of the streaming data sets (``folder:PATH`` above a few hundred
images, ``shards:DIR``). A subclass says how to get the bytes of image i (``read_bytes``); the
base decodes them (``contrastkit.data.decode``) and serves two readers:

- ``load(i) -> (image, y)``: the image at full resolution, (3, H, W) uint8, from which the
  trainer cuts its views before resizing (``contrastkit.transforms.full_resolution``);
- ``ds[i] -> (x, y)``: the contract of every data set (``contrastkit.data``): x the image
  resized and centre-cropped to ``image_size`` (``decode.fit_square``), float (3, S, S) in
  [0, 1], what evaluation embeds.

A file that turns out unreadable only when decoded (a truncated JPEG passes the header check
that the builders run) is replaced by the next readable image of the data set, so every index
still gives an image and runs stay reproducible; each process logs the first such file once, and
``skipped`` counts them.

Letters used in shapes: H, W an image's own size, S the side ``image_size``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from contrastkit.data.decode import UnreadableImageError, decode_rgb, fit_square

log = logging.getLogger(__name__)


class FileImages(Dataset):
    """Images decoded on demand from their files' bytes; ``ds[i] -> (x: (3, S, S), y: int)``.

    Args:
        names: a name for each of the N images (relative paths), used in messages.
        labels: (N,) class indices, or None for unlabelled data (then y is -1).
        class_names: names of the classes, or None.
        image_size: S, the side of what ``ds[i]`` returns.
        name: the data set's name, e.g. "folder" or "shards".
    """

    kind = "images"
    full_resolution = True  # the trainer cuts views from ``load(i)``, not from ``ds[i]``

    def __init__(
        self,
        names: Sequence[str],
        labels: Tensor | None,
        class_names: Sequence[str] | None,
        image_size: int,
        name: str,
    ) -> None:
        if labels is not None and labels.shape != (len(names),):
            raise ValueError(f"labels must be (N,) = ({len(names)},), got {tuple(labels.shape)}")
        self.names = list(names)
        self.labels = None if labels is None else labels.long()
        self.class_names = None if class_names is None else list(class_names)
        self.image_size = int(image_size)
        self.name = name
        self.input_shape = (3, self.image_size, self.image_size)
        self.skipped = 0  # files found unreadable when decoded, in this process

    def __len__(self) -> int:
        return len(self.names)

    def read_bytes(self, index: int) -> bytes:
        """Return the bytes of image ``index``'s file (what a subclass provides)."""
        raise NotImplementedError

    def decode(self, index: int) -> Tensor:
        """Return image ``index`` decoded at full resolution, (3, H, W) uint8.

        Raises:
            UnreadableImageError, OSError: the file cannot be read or decoded.
        """
        return decode_rgb(self.read_bytes(index), self.names[index])

    def load(self, index: int) -> tuple[Tensor, int]:
        """Return image ``index`` at full resolution, (3, H, W) uint8, and its class y.

        An unreadable file is replaced by the next readable image (and its class).

        Raises:
            UnreadableImageError: no image of the data set can be decoded.
        """
        for offset in range(len(self)):
            current = (index + offset) % len(self)
            try:
                image = self.decode(current)
            except (UnreadableImageError, OSError) as err:
                self.skipped += 1
                if self.skipped == 1:
                    log.warning("skipping an unreadable image, using the next one instead: %s", err)
                continue
            return image, -1 if self.labels is None else int(self.labels[current])
        raise UnreadableImageError(f"no image of the {self.name} data set can be decoded")

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.load(index)
        return fit_square(image, self.image_size).to(torch.float32).div_(255.0), label


__all__ = ["FileImages"]

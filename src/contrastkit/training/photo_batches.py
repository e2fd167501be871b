"""Batches of views cut from full-resolution photos (data sets with ``full_resolution``).

``epoch_batches`` (``contrastkit.training.batches``) hands such data sets here when the views
are ``FullResolutionViews``. Two ways to decode, ``decode``:

- ``"workers"`` (the default): each DataLoader worker reads a file, decodes it on the CPU
  (libjpeg-turbo) and sends only uint8 pixels of the views' size. Training on a CPU, the
  workers make the finished views with Pillow (``FullResolutionViews.photo_views``), so that
  all of the CPU work is spread over them, and this process only converts the batch to float;
  on an accelerator they send the crops, finished there (``FullResolutionViews.__call__``).
- ``"device"``: the workers only read the files' bytes; the main process decodes the JPEGs on
  the training device in one call (``torchvision.io.decode_jpeg(..., device=...)``, nvJPEG on
  CUDA), cuts the crops there and finishes the views there, so the CPU does nearly nothing. A
  file that is not a JPEG, or fails to decode there, is decoded on the CPU the usual way.

The randomness is the same as for any batched views: sample i of epoch e draws its U numbers
from a generator seeded by (seed, e, i), so batches do not depend on the worker count, and a
resumed run sees the same views as an uninterrupted one.

Letters used in shapes: B batch size, V views, U draws per sample, S_v the side of view v.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, default_collate
from torchvision.io import ImageReadMode, decode_jpeg

from contrastkit.data.decode import UnreadableImageError, image_header
from contrastkit.training.in_flight import InFlight, naming_dead_workers
from contrastkit.training.samples import DrawDataset
from contrastkit.transforms import FullResolutionViews

DECODE_MODES = ("workers", "device")
_JPEG_MAGIC = b"\xff\xd8\xff"


class CropDataset(DrawDataset):
    """Item i: the V crops of photo i (uint8), its draws u (U,) [and its class y]; with
    ``finish`` its V finished views (uint8) instead of the crops."""

    def __init__(
        self,
        dataset,
        views: FullResolutionViews,
        seed,
        epoch,
        labels=False,
        finish=False,
        in_flight: InFlight | None = None,
    ) -> None:
        super().__init__(dataset, views.num_draws, seed, epoch, labels)
        self.views = views
        self.finish = finish
        self.in_flight = in_flight

    def read(self, index: int) -> tuple[Tensor, int]:
        if self.in_flight is not None:
            self.in_flight.mark(index)  # a worker that dies now names this file
        return self.dataset.load(index)  # (3, H, W) uint8 at full resolution

    def make(self, x: Tensor, seed: int) -> list[Tensor]:
        _, u = super().make(x, seed)
        if self.finish:
            return [*self.views.photo_views(x, u), u]
        return [*self.views.crop(x, u), u]


class BytesDataset(DrawDataset):
    """Item i: the bytes of photo i's file (a uint8 tensor; empty if unreadable), its draws u
    (U,), its index [and its class y]."""

    def read(self, index: int) -> tuple[Tensor, int]:
        try:
            data = self.dataset.read_bytes(index)
        except OSError:
            data = b""  # the main process falls back to ``load``, which skips the file
        label = -1 if self.dataset.labels is None else int(self.dataset.labels[index])
        return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else _EMPTY, label

    def make(self, x: Tensor, seed: int) -> list[Tensor]:
        return list(super().make(x, seed))


_EMPTY = torch.zeros(0, dtype=torch.uint8)


def collate_bytes(samples: list[list[Tensor]]) -> list:
    """B items (bytes, u, [y]) -> [list of B byte tensors, u (B, U), [y (B,)]]."""
    return [[s[0] for s in samples], *default_collate([s[1:] for s in samples])]


def decode_on_device(data: list[Tensor], indices: list[int], dataset, device) -> list[Tensor]:
    """Decode B files' bytes on ``device``: B images (3, H, W) uint8 there.

    JPEGs that pass the header check (``contrastkit.data.decode``) are decoded in one batched
    call; any other file, and a batch whose decoding fails, go image by image through
    ``dataset.load`` (the CPU decoders, which skip unreadable files).
    """
    images: list[Tensor | None] = [None] * len(data)
    jpegs = [k for k, d in enumerate(data) if _is_jpeg(d, dataset.names[indices[k]])]
    if jpegs:
        try:
            decoded = decode_jpeg([data[k] for k in jpegs], mode=ImageReadMode.RGB, device=device)
            for k, image in zip(jpegs, decoded, strict=True):
                images[k] = image
        except RuntimeError:
            pass  # one bad file fails the call: every image of the batch goes the slow way
    for k, image in enumerate(images):
        if image is None:
            images[k] = dataset.load(indices[k])[0].to(device)
    return images


def _is_jpeg(data: Tensor, name: str) -> bool:
    if data.numel() < 3 or bytes(data[:3].tolist()) != _JPEG_MAGIC:
        return False
    try:
        image_header(data.numpy().tobytes(), name)  # refuses decompression bombs
    except UnreadableImageError:
        return False
    return True


def photo_batches(
    dataset,
    views: FullResolutionViews,
    batches: list[list[int]],
    *,
    seed: int,
    epoch: int,
    num_workers: int,
    device: torch.device,
    labels: bool,
    decode: str = "workers",
):
    """Yield the views of each batch in ``batches``: V tensors (B, 3, S_v, S_v) [+ y (B,)].

    Args:
        dataset: a ``full_resolution`` data set (``contrastkit.data.streaming.FileImages``).
        views: the recipe's ``FullResolutionViews``.
        batches: this process's sample indices of each batch to yield.
        seed, epoch, num_workers, device, labels: as for ``batches.epoch_batches``.
        decode: "workers" or "device" (see the module docstring).
    """
    if decode not in DECODE_MODES:
        raise ValueError(f"--decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    device = torch.device(device)
    in_flight = InFlight(dataset.names, num_workers)
    if decode == "device":  # the workers only read bytes: nothing there to die in
        items = BytesDataset(dataset, views.num_draws, seed, epoch, labels)
        collate = collate_bytes
    else:
        finish = device.type == "cpu"
        items = CropDataset(dataset, views, seed, epoch, labels, finish, in_flight)
        collate = default_collate
    loader = DataLoader(items, batch_sampler=batches, num_workers=num_workers, collate_fn=collate)
    with in_flight, naming_dead_workers():  # named here, before ``in_flight`` closes
        yield from _views_of(loader, batches, dataset, views, device, decode)


def _views_of(loader, batches, dataset, views, device, decode):
    """The loop of ``photo_batches``: each batch's views on ``device``."""
    non_blocking = device.type == "cuda"
    for indices, batch in zip(batches, loader, strict=False):
        if decode == "device":
            data, u, *y = batch
            images = decode_on_device(data, indices, dataset, device)
            crops = [views.crop(image, row) for image, row in zip(images, u, strict=True)]
            stacked = [torch.stack(per_view) for per_view in zip(*crops, strict=True)]
            yield [*views(stacked, u.to(device)), *(t.to(device) for t in y)]
        elif device.type == "cpu":  # finished views, u, [y]
            V = len(views.sizes)
            yield [*views.to_float(batch[:V]), *batch[V + 1 :]]
        else:
            tensors = [t.to(device, non_blocking=non_blocking) for t in batch]
            V = len(views.sizes)
            yield [*views(tensors[:V], tensors[V]), *tensors[V + 1 :]]


__all__ = [
    "DECODE_MODES",
    "BytesDataset",
    "CropDataset",
    "collate_bytes",
    "decode_on_device",
    "photo_batches",
]

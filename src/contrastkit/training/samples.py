"""The items a DataLoader makes for training: a sample, its views or its draws, from a seed.

Item i of epoch e is made from sample i and a seed that is a hash of (seed, e, i)
(``mix_seed``), so it does not depend on the worker that makes it or on what ran before
(``contrastkit.training.batches``).

Letters used in shapes: B batch size, V views, U uniform draws per sample.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torch.utils.data import Dataset

from contrastkit.transforms import ViewFn


def mix_seed(*parts: int) -> int:
    """Hash integers into one 63-bit seed (stable across processes and Python versions)."""
    digest = hashlib.blake2b(repr(tuple(int(p) for p in parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class _SeededSamples(Dataset):
    """Item i of the wrapped dataset, made from sample i and a seed fixed by (seed, epoch, i).

    With ``labels`` the item also ends with sample i's class y (a long scalar tensor).
    """

    def __init__(self, dataset: Dataset, seed: int, epoch: int, labels: bool = False) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = epoch
        self.labels = labels

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.read(index)
        item = self.make(x, mix_seed(self.seed, self.epoch, index))
        return [*item, torch.as_tensor(y, dtype=torch.long)] if self.labels else item

    def read(self, index: int) -> tuple[Any, int]:
        """Return sample ``index`` and its class: ``dataset[index]``."""
        return self.dataset[index]

    def make(self, x: Tensor, seed: int):
        """Return the item of raw sample ``x`` whose randomness is fixed by ``seed``."""
        raise NotImplementedError


class ViewDataset(_SeededSamples):
    """Wraps a dataset so that item i is the list of views of sample i, made reproducibly.

    Args:
        dataset: ``ds[i] -> (x, y)``.
        view_fn: one raw x -> list of V views (uses torch's global RNG).
        seed: the run's seed.
        epoch: the epoch whose views these are.
        labels: end each item with the sample's class y (``Method.needs_labels``).
    """

    def __init__(
        self, dataset: Dataset, view_fn: ViewFn, seed: int, epoch: int, labels: bool = False
    ) -> None:
        super().__init__(dataset, seed, epoch, labels)
        self.view_fn = view_fn
        self.full_resolution = getattr(dataset, "full_resolution", False)

    def read(self, index: int) -> tuple[Tensor, int]:
        """Return sample ``index`` and its class; a photo at full resolution as float in [0,
        1], enlarged first if it is smaller than the largest view (``min_side``)."""
        if not self.full_resolution:
            return self.dataset[index]
        image, label = self.dataset.load(index)
        min_side = getattr(self.view_fn, "min_side", 0)
        if min(image.shape[-2:]) < min_side:
            image = TF.resize(image, min_side, antialias=True)
        return image.to(torch.float32).div_(255.0), label

    def make(self, x: Tensor, seed: int) -> list[Tensor]:
        """Return the V views of ``x``, made under torch's global RNG seeded by ``seed``."""
        # the default CPU generator alone is reseeded (torch.manual_seed would also touch every
        # accelerator, 100x slower); views are made on the CPU
        state = torch.get_rng_state()
        try:
            torch.default_generator.manual_seed(seed)
            return self.view_fn(x)
        finally:
            torch.set_rng_state(state)


class DrawDataset(_SeededSamples):
    """Wraps a dataset so that item i is ``(x_i, u_i)``: the raw sample and its view draws.

    Args:
        dataset: ``ds[i] -> (x, y)``.
        num_draws: U, the uniform numbers in [0, 1) one sample's views consume.
        seed: the run's seed.
        epoch: the epoch whose views these are.
        labels: end each item with the sample's class y (``Method.needs_labels``).
    """

    def __init__(
        self, dataset: Dataset, num_draws: int, seed: int, epoch: int, labels: bool = False
    ) -> None:
        super().__init__(dataset, seed, epoch, labels)
        self.num_draws = num_draws

    def make(self, x: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        """Return ``(x, u)``: x unchanged and its U draws from a generator seeded by ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        return x, torch.rand(self.num_draws, generator=generator)  # (U,)


def collate_views(samples: list[list[Tensor]]) -> list[Tensor]:
    """Stack B samples of V views each into V tensors of shape (B, ...)."""
    return [torch.stack(views) for views in zip(*samples, strict=True)]


__all__ = ["DrawDataset", "ViewDataset", "collate_views", "mix_seed"]

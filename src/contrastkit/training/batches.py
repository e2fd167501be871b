"""Batches of views whose order and augmentation are a pure function of (seed, epoch, index).

The order of epoch e is ``torch.randperm`` under a generator seeded by (seed, e); the views of
sample i in epoch e are made with torch's global RNG seeded by a hash of (seed, e, i) (per-sample
views), or from uniform numbers drawn by a generator seeded by that hash (batched views, made
for the whole batch on the training device). Nothing depends on what ran before, so a run
resumed at step s rebuilds exactly the batches an uninterrupted run would have seen from step s
on, and worker processes need no seeding. The last incomplete batch is dropped: every step sees
a full batch.

Letters used in shapes: B batch size (per process), V views, U uniform draws per sample.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from contrastkit.transforms import BatchedViews, ViewFn


def mix_seed(*parts: int) -> int:
    """Hash integers into one 63-bit seed (stable across processes and Python versions)."""
    digest = hashlib.blake2b(repr(tuple(int(p) for p in parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """Return the sample order of ``epoch``: a permutation of range(n) fixed by (seed, epoch)."""
    generator = torch.Generator().manual_seed(mix_seed(seed, epoch, -1))
    return torch.randperm(n, generator=generator)


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Return the number of full global batches in an epoch of n samples."""
    return n // (batch_size * world_size)


def batch_indices(
    seed: int, epoch: int, n: int, batch_size: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """Return this process's sample indices of every full batch of ``epoch``.

    Global batch b is ``order[b * B * W : (b + 1) * B * W]``; process r takes its r-th slice of B.
    """
    order = epoch_order(seed, epoch, n).tolist()
    global_batch = batch_size * world_size
    return [
        order[start + rank * batch_size : start + (rank + 1) * batch_size]
        for start in range(
            0, steps_per_epoch(n, batch_size, world_size) * global_batch, global_batch
        )
    ]


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
        x, y = self.dataset[index]
        item = self.make(x, mix_seed(self.seed, self.epoch, index))
        return [*item, torch.as_tensor(y, dtype=torch.long)] if self.labels else item

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


def epoch_batches(
    dataset: Dataset,
    view_fn: ViewFn | BatchedViews,
    *,
    seed: int,
    epoch: int,
    batch_size: int,
    start_batch: int = 0,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | str = "cpu",
    labels: bool = False,
) -> Iterator[list[Tensor]]:
    """Return the batches of ``epoch`` from ``start_batch`` on, each V x (B, ...) on ``device``.

    Args:
        dataset: the training data.
        view_fn: from ``contrastkit.transforms.build_view_fn`` (views made per sample, in the
            loader) or ``build_batched_view_fn`` (raw images and draws are loaded, moved to
            ``device`` and turned into views there, one call per view).
        seed: the run's seed.
        epoch: 0-based epoch.
        batch_size: per-process batch size B.
        start_batch: skip the batches before it (resume mid-epoch).
        num_workers: DataLoader worker processes (0: load in this process).
        rank, world_size: this process's slice of each global batch.
        device: where the views are returned.
        labels: append the batch's classes y (B,) long after the views (``Method.needs_labels``).
    """
    batches = batch_indices(seed, epoch, len(dataset), batch_size, rank, world_size)[start_batch:]
    batched = isinstance(view_fn, BatchedViews)
    loader = DataLoader(
        DrawDataset(dataset, view_fn.num_draws, seed, epoch, labels)
        if batched
        else ViewDataset(dataset, view_fn, seed, epoch, labels),
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=None if batched else collate_views,
        persistent_workers=False,
    )
    non_blocking = torch.device(device).type == "cuda"
    for batch in loader:
        if batched:
            x, u, *y = (t.to(device, non_blocking=non_blocking) for t in batch)  # y: labels
            yield [*view_fn(x, u), *y]
        else:
            yield [v.to(device, non_blocking=non_blocking) for v in batch]


@dataclass
class Batch:
    """The batch of one optimizer step.

    Attributes:
        step: the 0-based step it is for.
        epoch: the 0-based epoch it belongs to.
        indices: this process's B sample indices in the dataset.
        views: V tensors (B, ...) on the training device.
    """

    step: int
    epoch: int
    indices: list[int]
    views: list[Tensor]


def step_batches(
    dataset: Dataset,
    view_fn: ViewFn | BatchedViews,
    *,
    seed: int,
    batch_size: int,
    start_step: int,
    total_steps: int,
    **loading: Any,
) -> Iterator[Batch]:
    """Yield the batches of steps ``start_step`` to ``total_steps - 1``, epoch after epoch.

    Args:
        dataset, view_fn, seed, batch_size: as for ``epoch_batches``.
        start_step: the first step: a run resumed there gets the batches an uninterrupted run
            gets from there on.
        total_steps: the step to stop before.
        **loading: ``num_workers``, ``rank``, ``world_size``, ``device``, ``labels``, as for
            ``epoch_batches``.
    """
    n, rank, world_size = len(dataset), loading.get("rank", 0), loading.get("world_size", 1)
    per_epoch = steps_per_epoch(n, batch_size, world_size)
    batches_of = partial(
        epoch_batches, dataset, view_fn, seed=seed, batch_size=batch_size, **loading
    )
    step = start_step
    while step < total_steps:
        epoch, first = divmod(step, per_epoch)
        indices = batch_indices(seed, epoch, n, batch_size, rank, world_size)
        for views in batches_of(epoch=epoch, start_batch=first):
            yield Batch(step, epoch, indices[step % per_epoch], views)
            step += 1
            if step >= total_steps:
                return


__all__ = [
    "Batch",
    "DrawDataset",
    "ViewDataset",
    "batch_indices",
    "collate_views",
    "epoch_batches",
    "epoch_order",
    "mix_seed",
    "step_batches",
    "steps_per_epoch",
]

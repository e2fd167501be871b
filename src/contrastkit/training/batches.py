"""Batches of views whose order and augmentation are a pure function of (seed, epoch, index).

The order of epoch e is ``torch.randperm`` under a generator seeded by (seed, e); the views of
sample i in epoch e are made with torch's global RNG seeded by a hash of (seed, e, i) (per-sample
views), or from uniform numbers drawn by a generator seeded by that hash (batched views, made
for the whole batch on the training device). Nothing depends on what ran before, so a run
resumed at step s rebuilds exactly the batches an uninterrupted run would have seen from step s
on, and worker processes need no seeding. The last incomplete batch is dropped: every step sees
a full batch.

Sharded data (``shards:DIR``, whose samples come in tar files: ``dataset.shard_sizes``) is
split by shard instead, so that each process reads only its own files: in epoch e the shards are
permuted by (seed, e), process r takes shards r, r + W, r + 2W... of that order, and its samples
are shuffled by (seed, e, r). Every process has at least the floor(S / W) smallest shards' worth
of samples, which fixes the steps of an epoch (``steps_per_epoch``) whatever the permutation.

Data sets of full-resolution photos (``full_resolution``) are loaded by
``contrastkit.training.photo_batches``, which cuts the views' crops in the workers.

Letters used in shapes: B batch size (per process), V views, U uniform draws per sample.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from contrastkit.training.photo_batches import photo_batches
from contrastkit.training.samples import (
    DrawDataset,
    ViewDataset,
    collate_views,
    mix_seed,
)
from contrastkit.transforms import BatchedViews, FullResolutionViews, ViewFn


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """Return the sample order of ``epoch``: a permutation of range(n) fixed by (seed, epoch)."""
    generator = torch.Generator().manual_seed(mix_seed(seed, epoch, -1))
    return torch.randperm(n, generator=generator)


def steps_per_epoch(
    n: int, batch_size: int, world_size: int = 1, shard_sizes: Sequence[int] | None = None
) -> int:
    """Return the number of full global batches in an epoch of n samples.

    Args:
        n: the samples.
        batch_size: per-process batch size B.
        world_size: W processes.
        shard_sizes: the samples of each shard, in order, for sharded data (None: not sharded).

    Raises:
        ValueError: fewer shards than processes.
    """
    if shard_sizes is None:
        return n // (batch_size * world_size)
    if len(shard_sizes) < world_size:
        raise ValueError(
            f"the data has {len(shard_sizes)} shard(s), fewer than the {world_size} processes: "
            "make more, smaller shards (contrastkit shard --shard-size)"
        )
    return sum(sorted(shard_sizes)[: len(shard_sizes) // world_size]) // batch_size


def shard_order(
    seed: int, epoch: int, shard_sizes: Sequence[int], rank: int = 0, world_size: int = 1
) -> list[int]:
    """Return process ``rank``'s samples of ``epoch`` in order, all from its own shards.

    Shard k holds the samples ``sum(shard_sizes[:k])`` to ``sum(shard_sizes[:k + 1]) - 1``.
    """
    starts = [0]
    for size in shard_sizes:
        starts.append(starts[-1] + int(size))
    shards = epoch_order(seed, epoch, len(shard_sizes)).tolist()[rank::world_size]
    mine = torch.cat([torch.arange(starts[k], starts[k + 1]) for k in shards])
    generator = torch.Generator().manual_seed(mix_seed(seed, epoch, rank, -2))
    return mine[torch.randperm(len(mine), generator=generator)].tolist()


def batch_indices(
    seed: int,
    epoch: int,
    n: int,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    shard_sizes: Sequence[int] | None = None,
) -> list[list[int]]:
    """Return this process's sample indices of every full batch of ``epoch``.

    Global batch b is ``order[b * B * W : (b + 1) * B * W]``; process r takes its r-th slice of B.
    Sharded data (``shard_sizes``): batch b of process r is ``shard_order(...)[b * B : (b + 1) *
    B]``.
    """
    steps = steps_per_epoch(n, batch_size, world_size, shard_sizes)
    if shard_sizes is not None:
        order = shard_order(seed, epoch, shard_sizes, rank, world_size)
        return [order[b * batch_size : (b + 1) * batch_size] for b in range(steps)]
    order = epoch_order(seed, epoch, n).tolist()
    global_batch = batch_size * world_size
    return [
        order[start + rank * batch_size : start + (rank + 1) * batch_size]
        for start in range(0, steps * global_batch, global_batch)
    ]


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
    decode: str = "workers",
) -> Iterator[list[Tensor]]:
    """Return the batches of ``epoch`` from ``start_batch`` on, each V x (B, ...) on ``device``.

    Args:
        dataset: the training data (sharded when it has ``shard_sizes``).
        view_fn: from ``contrastkit.transforms.build_view_fn`` (views made per sample, in the
            loader) or ``build_batched_view_fn`` (raw images and draws are loaded, moved to
            ``device`` and turned into views there, one call per view; for full-resolution
            photos, ``FullResolutionViews``: see ``contrastkit.training.photo_batches``).
        seed: the run's seed.
        epoch: 0-based epoch.
        batch_size: per-process batch size B.
        start_batch: skip the batches before it (resume mid-epoch).
        num_workers: DataLoader worker processes (0: load in this process).
        rank, world_size: this process's slice of each global batch.
        device: where the views are returned.
        labels: append the batch's classes y (B,) long after the views (``Method.needs_labels``).
        decode: where full-resolution photos are decoded: "workers" or "device".
    """
    shards = getattr(dataset, "shard_sizes", None)
    batches = batch_indices(seed, epoch, len(dataset), batch_size, rank, world_size, shards)
    batches = batches[start_batch:]
    if isinstance(view_fn, FullResolutionViews):
        yield from photo_batches(
            dataset,
            view_fn,
            batches,
            seed=seed,
            epoch=epoch,
            num_workers=num_workers,
            device=torch.device(device),
            labels=labels,
            decode=decode,
        )
        return
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
        **loading: ``num_workers``, ``rank``, ``world_size``, ``device``, ``labels``, ``decode``,
            as for ``epoch_batches``.
    """
    n, rank, world_size = len(dataset), loading.get("rank", 0), loading.get("world_size", 1)
    shards = getattr(dataset, "shard_sizes", None)
    per_epoch = steps_per_epoch(n, batch_size, world_size, shards)
    batches_of = partial(
        epoch_batches, dataset, view_fn, seed=seed, batch_size=batch_size, **loading
    )
    step = start_step
    while step < total_steps:
        epoch, first = divmod(step, per_epoch)
        indices = batch_indices(seed, epoch, n, batch_size, rank, world_size, shards)
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
    "shard_order",
    "step_batches",
    "steps_per_epoch",
]

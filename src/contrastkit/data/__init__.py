"""Datasets: raw samples only, no augmentation (views are made by ``contrastkit.transforms``).

A dataset spec is ``NAME`` or ``NAME:PATH`` (``folder:~/photos``, ``cifar10:./cifar``).
Every dataset returned by ``build_dataset`` follows one contract:

- ``ds[i] -> (x, y)``: x a float tensor — (2,) points for ``toy``, (C, H, W) in [0, 1] for
  images — and y an int class label, -1 when the data has no labels.
- ``ds.kind``: ``"points"`` or ``"images"``.
- ``ds.labels``: LongTensor (N,) or None; used only for evaluation, never for training.
- ``ds.class_names``: list[str] or None.
- ``ds.input_shape``: the shape of one x.
- optionally ``ds.captions`` (list[str], for CLIP) and ``ds.masks`` (BoolTensor (N, H, W)).
"""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.data import Dataset

from contrastkit.data.cifar import build_cifar10, build_cifar100
from contrastkit.data.digits import build_digits
from contrastkit.data.folders import build_folder
from contrastkit.data.pairs import build_pairs
from contrastkit.data.shapes import build_shapes, build_shapes64
from contrastkit.data.shards import build_shards
from contrastkit.data.toy import build_toy

# name -> builder(path, *, train, seed, download[, image_size]) -> Dataset
DATASETS: dict[str, Callable[..., Dataset]] = {
    "toy": build_toy,
    "digits": build_digits,
    "pairs": build_pairs,
    "shapes": build_shapes,
    "shapes64": build_shapes64,
    "folder": build_folder,
    "shards": build_shards,
    "cifar10": build_cifar10,
    "cifar100": build_cifar100,
}

# names whose spec must carry a path, e.g. "folder:PATH"
NEEDS_PATH: set[str] = {"pairs", "folder", "shards", "cifar10", "cifar100"}
# names whose photos are resized to --image-size (the others have their own fixed size)
SIZED: set[str] = {"folder", "shards"}


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``"NAME:PATH"`` into its name and path (None when absent) and check the name."""
    name, _, path = spec.partition(":")
    if name not in DATASETS:
        valid = ", ".join(sorted(DATASETS))
        raise ValueError(f"unknown dataset {name!r} in --data {spec!r}; expected one of: {valid}")
    if name in NEEDS_PATH and not path:
        raise ValueError(f"--data {name} needs a path: write it as '{name}:PATH'")
    if name not in NEEDS_PATH and path:
        raise ValueError(f"--data {name} takes no path, got {spec!r}")
    return name, (path or None)


def image_size_for(spec: str, image_size: int | None) -> int | None:
    """Return ``image_size`` for data resized to it (``SIZED``), else None: what a trained
    run's ``image_size`` means for other data given to ``embed``, ``attention``..."""
    return image_size if spec.partition(":")[0] in SIZED else None


def build_dataset(
    spec: str,
    *,
    train: bool = True,
    seed: int = 0,
    download: bool = False,
    image_size: int | None = None,
) -> Dataset:
    """Build the train or test split of the dataset named by ``spec``.

    Args:
        spec: ``NAME`` or ``NAME:PATH``; see ``DATASETS`` for the names.
        train: the training split if True, else the held-out split.
        seed: seeds generated data and fixed splits.
        download: allow torchvision to download (CIFAR only); never done otherwise.
        image_size: the side photos are resized to (``folder`` and ``shards`` only; None: 224).

    Raises:
        ValueError: unknown name, missing path, data that cannot be used, or an image size
            for data of a fixed size.
    """
    name, path = parse_spec(spec)
    if image_size is None:
        return DATASETS[name](path, train=train, seed=seed, download=download)
    if name not in SIZED:
        raise ValueError(
            f"--image-size applies to {' and '.join(sorted(SIZED))} data, whose photos are "
            f"resized to it; --data {spec} has a fixed size (leave --image-size out)"
        )
    return DATASETS[name](path, train=train, seed=seed, download=download, image_size=image_size)


__all__ = ["DATASETS", "NEEDS_PATH", "SIZED", "build_dataset", "image_size_for", "parse_spec"]

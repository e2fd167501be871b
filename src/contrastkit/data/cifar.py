"""``cifar10:PATH`` and ``cifar100:PATH``: CIFAR from a local copy, via torchvision.

PATH is the folder that holds ``cifar-10-batches-py/`` (or ``cifar-100-python/``), or that folder
itself: the layout torchvision's ``CIFAR10(root, download=True)`` creates. Nothing is downloaded
unless the user passes ``--download`` (``download=True``). Images are (3, 32, 32) float tensors
in [0, 1]; the train split is the 50,000 training images, the test split the 10,000 test images;
CIFAR-100 uses its 100 fine labels. Labels are used only for evaluation.

The files are Python pickles, and unpickling can run code; torchvision therefore checks every
file against the MD5 of the official release before reading it, and so do we: a copy that is
partial, corrupted or foreign is refused with a message naming the files.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets.utils import check_integrity

from contrastkit.data.in_memory import InMemoryImages

VARIANTS: dict[str, type[CIFAR10]] = {"cifar10": CIFAR10, "cifar100": CIFAR100}


def expected_files(variant: str) -> list[tuple[str, str]]:
    """Return the (file name, official MD5) pairs a local copy of ``variant`` must hold."""
    cls = VARIANTS[variant]
    return [tuple(entry) for entry in cls.train_list + cls.test_list] + [
        (cls.meta["filename"], cls.meta["md5"])
    ]


def _root(path: str, variant: str) -> Path:
    """Return torchvision's root: the folder that holds the batches folder."""
    given = Path(path).expanduser()
    return given.parent if given.name == VARIANTS[variant].base_folder else given


def _check_copy(path: str, variant: str, root: Path) -> None:
    """Raise ValueError naming the files that are missing or differ from the official release."""
    folder = root / VARIANTS[variant].base_folder
    files = expected_files(variant)
    missing = [name for name, _ in files if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"{variant} path {path!r} lacks the expected file(s) {', '.join(missing)} in "
            f"{str(folder)!r}; point it at a folder holding {VARIANTS[variant].base_folder}/ or "
            f"pass --download to fetch {variant} there"
        )
    corrupt = [name for name, md5 in files if not check_integrity(str(folder / name), md5)]
    if corrupt:
        raise ValueError(
            f"{variant} file(s) {', '.join(corrupt)} in {str(folder)!r} do not match the official "
            "release's MD5 (corrupted, partial or foreign copy); delete them and pass --download"
        )


def build_cifar(
    variant: str, path: str | None, *, train: bool = True, download: bool = False
) -> InMemoryImages:
    """Load the train (50,000) or test (10,000) split of CIFAR-10 or CIFAR-100.

    Args:
        variant: "cifar10" or "cifar100".
        path: the folder holding (or to receive, with ``download``) the CIFAR files.
        train: which split.
        download: let torchvision download the release into ``path`` first.

    Raises:
        ValueError: no path, missing or corrupted files, or a failed download.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    if not path:
        raise ValueError(f"{variant} needs a path: write it as '{variant}:PATH'")
    root = _root(path, variant)
    if not download:
        _check_copy(path, variant, root)
    try:
        data = VARIANTS[variant](str(root), train=train, download=download)
    except (RuntimeError, OSError) as err:  # failed download or integrity check
        raise ValueError(f"{variant} at {path!r}: {err}") from err
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32)
    return InMemoryImages(images, torch.tensor(data.targets), data.classes, variant)


def build_cifar10(
    path: str | None, *, train: bool = True, seed: int = 0, download: bool = False
) -> InMemoryImages:
    """Load CIFAR-10 from ``path`` (``--data cifar10:PATH``); ``seed`` is unused."""
    return build_cifar("cifar10", path, train=train, download=download)


def build_cifar100(
    path: str | None, *, train: bool = True, seed: int = 0, download: bool = False
) -> InMemoryImages:
    """Load CIFAR-100 from ``path`` (``--data cifar100:PATH``); ``seed`` is unused."""
    return build_cifar("cifar100", path, train=train, download=download)


__all__ = ["VARIANTS", "build_cifar", "build_cifar10", "build_cifar100", "expected_files"]

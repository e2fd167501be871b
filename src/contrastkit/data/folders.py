"""``folder:PATH``: any folder of images, searched recursively, with or without class folders.

Files ending in .png, .jpg, .jpeg, .bmp, .gif, .webp, .tif or .tiff (any case) are read with PIL,
converted to RGB, and resized and centre-cropped to ``image_size`` x ``image_size`` (64 by
default; ``PIL.ImageOps.fit``), so that every sample has the same shape and batches stack. All
images are decoded once, when the dataset is first built, and kept in memory as uint8
(N * 3 * 64 * 64 bytes: 120 MB for 10,000 images); the train and test splits share that cache.

Labels: when every image sits inside a first-level sub-folder (``PATH/cat/x.jpg``,
``PATH/dog/y/z.png``), that folder is its class (``class_names`` sorted); otherwise the data is
unlabelled (labels None, y = -1). Labels are used only for evaluation.

Split: 20% of the images of each class (of all images when unlabelled) form the test split,
chosen by the MD5 hash of their relative paths, so the split does not depend on the seed or the
order of the files on disk; a group of two or more images always puts at least one in each
split, and a group of a single image puts it in both.

Unreadable or corrupt files are skipped with one warning that counts them and names the first.
File names need not be valid UTF-8 (a name written by another system's encoding is read as
Python gives it, ``os.fsdecode``, and hashed by its bytes); messages name such paths by ``repr``,
and a class folder whose name is not valid UTF-8 shows it with U+FFFD in ``class_names``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from contrastkit.data.in_memory import InMemoryImages

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGE_SIZE = 64
TEST_FRACTION = 0.2
# what PIL raises on files it cannot decode (truncated, corrupt, not an image, too large)
_UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _read(path: Path, size: int) -> np.ndarray:
    """Decode one image file to RGB, resized and centre-cropped: (S, S, 3) uint8."""
    with Image.open(path) as image:
        image.draft("RGB", (size, size))  # JPEG: let the decoder downscale (much faster)
        rgb = image.convert("RGB")
    return np.asarray(ImageOps.fit(rgb, (size, size), Image.Resampling.BICUBIC))


def _scan(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()]
    return sorted(files)


@functools.lru_cache(maxsize=2)
def _load(root: Path, size: int, signature: tuple) -> tuple[np.ndarray, list[str]]:
    """Decode every readable image under root: (N, 3, S, S) uint8 and their relative paths.

    ``signature`` (relative path, mtime, byte size of every file) keys the cache, so changed
    files are read again.
    """
    images, names, bad = [], [], []
    for name, *_ in signature:
        try:
            images.append(_read(root / name, size))
            names.append(name)
        except _UNREADABLE:
            bad.append(name)
    if bad:
        log.warning(
            "skipped %d unreadable image file(s) under %r (first: %r)", len(bad), str(root), bad[0]
        )
    if not images:
        raise ValueError(
            f"folder {str(root)!r} has no readable image: all {len(bad)} image file(s) failed "
            f"to decode (first: {bad[0]!r})"
        )
    log.info("read %d images of %dx%d from %s", len(images), size, size, root)
    return np.stack(images).transpose(0, 3, 1, 2), names


def _printable(name: str) -> str:
    """Return a file name that prints anywhere: bytes that are not UTF-8 become U+FFFD."""
    return os.fsencode(name).decode("utf-8", errors="replace")


def split_indices(names: list[str], groups: list[int], train: bool) -> list[int]:
    """Return the indices of the train or test split: 20% of each group, chosen by path hash.

    Args:
        names: relative paths of the N images.
        groups: (N,) group of each image (its class, or all 0 when unlabelled).
        train: which split.
    """
    chosen = []
    for group in sorted(set(groups)):
        members = [i for i, g in enumerate(groups) if g == group]
        if len(members) == 1:  # a lone image serves in both splits
            chosen += members
            continue
        # the name's bytes on disk: the same as UTF-8 for UTF-8 names, defined for any other
        members.sort(key=lambda i: hashlib.md5(os.fsencode(names[i])).hexdigest())
        n_test = min(max(round(TEST_FRACTION * len(members)), 1), len(members) - 1)
        test = set(members[:n_test])
        chosen += [i for i in members if (i in test) != train]
    return sorted(chosen)


def build_folder(
    path: str | None,
    *,
    train: bool = True,
    seed: int = 0,
    download: bool = False,
    image_size: int = IMAGE_SIZE,
) -> InMemoryImages:
    """Read the images under ``path`` and return the train (80%) or test (20%) split.

    Args:
        path: a folder, searched recursively.
        train: which split.
        seed: unused: the split depends on file names only, so runs stay comparable.
        download: unused; nothing is downloaded.
        image_size: side S of the square every image is resized and centre-cropped to.

    Raises:
        ValueError: the folder is missing, not a folder, or holds no readable image.
    """
    if not path:
        raise ValueError("folder dataset needs a path: write it as 'folder:PATH'")
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise ValueError(f"image folder {path!r} does not exist")
    if not root.is_dir():
        raise ValueError(f"image folder {path!r} is not a folder")
    files = _scan(root)
    if not files:
        raise ValueError(
            f"image folder {path!r} holds no image file (looked recursively for "
            f"{', '.join(EXTENSIONS)})"
        )
    signature = tuple(
        (f.relative_to(root).as_posix(), f.stat().st_mtime_ns, f.stat().st_size) for f in files
    )
    images, names = _load(root, int(image_size), signature)
    parts = [name.split("/") for name in names]
    if all(len(p) >= 2 for p in parts):  # every image inside a class folder
        folders = sorted({p[0] for p in parts})
        groups = [folders.index(p[0]) for p in parts]
        class_names = [_printable(name) for name in folders]
    else:
        class_names, groups = None, [0] * len(names)
    index = split_indices(names, groups, train)
    labels = torch.tensor([groups[i] for i in index]) if class_names else None
    dataset = InMemoryImages(torch.from_numpy(images[index]), labels, class_names, "folder")
    dataset.paths = [names[i] for i in index]
    return dataset


__all__ = ["EXTENSIONS", "IMAGE_SIZE", "build_folder", "split_indices"]

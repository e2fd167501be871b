"""``folder:PATH``: any folder of images, searched recursively, with or without class folders.

Files ending in .png, .jpg, .jpeg, .bmp, .gif, .webp, .tif or .tiff (any case) are images. When
the data set is built, each file's header is read (not its pixels) to find the files that are
not images or would be too large to decode (``contrastkit.data.decode``); they are skipped with
one warning that counts them and names the first.

Two ways to serve the images, chosen by size and said in the log:

- **streamed** (the default): nothing but the file names is kept in memory. DataLoader worker
  processes read and decode each image when a batch needs it (``--num-workers``).
- **in memory**, for small folders whose decoded images take at most ``IN_MEMORY_BYTES`` (64
  MiB: about 119 photos of 500x375 px): every image is decoded once, at full resolution, and
  kept, which is faster than decoding a file each time it is drawn.

Either way the trainer cuts its random resized crops from the full-resolution image before
resizing them to ``--image-size`` (224 by default), as torchvision's ``RandomResizedCrop`` does
on a photo (``contrastkit.transforms.full_resolution``), and ``ds[i]`` (what evaluation embeds)
is the image resized and centre-cropped to that size.

Labels: when every image sits inside a first-level sub-folder (``PATH/cat/x.jpg``,
``PATH/dog/y/z.png``), that folder is its class (``class_names`` sorted); otherwise the data is
unlabelled (labels None, y = -1). Labels are used only for evaluation.

Split: 20% of the images of each class (of all images when unlabelled) form the test split,
chosen by the MD5 hash of their relative paths, so the split does not depend on the seed or the
order of the files on disk; a group of two or more images always puts at least one in each
split, and a group of a single image puts it in both.

File names need not be valid UTF-8 (a name written by another system's encoding is read as
Python gives it, ``os.fsdecode``, and hashed by its bytes); messages name such paths by ``repr``,
and a class folder whose name is not valid UTF-8 shows it with U+FFFD in ``class_names``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from contrastkit.data.decode import UnreadableImageError, decode_rgb, image_header
from contrastkit.data.streaming import FileImages

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGE_SIZE = 224  # --image-size's default for folders
IN_MEMORY_BYTES = 64 * 2**20  # folders whose decoded images fit in this are held in memory
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class FolderScan:
    """The readable images under a folder, with their classes.

    Attributes:
        root: the folder, resolved.
        names: relative POSIX paths of the N readable images, sorted.
        groups: (N,) the class of each image (all 0 when unlabelled).
        class_names: the first-level sub-folders, sorted, or None when unlabelled.
        pixels: the number of pixels of all N images, from their headers.
        unreadable: the image files whose header cannot be read (skipped).
    """

    root: Path
    names: list[str]
    groups: list[int]
    class_names: list[str] | None
    pixels: int
    unreadable: tuple[str, ...]


def _scan(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()]
    return sorted(files)


@functools.lru_cache(maxsize=4)
def _report_unreadable(root: Path, bad: tuple[str, ...], total: int) -> None:
    """Warn once per folder and set of bad files; raise when no file is readable."""
    if bad and len(bad) == total:
        raise ValueError(
            f"folder {str(root)!r} has no readable image: all {len(bad)} image file(s) failed "
            f"to decode (first: {bad[0]!r})"
        )
    if bad:
        log.warning(
            "skipped %d unreadable image file(s) under %r (first: %r)", len(bad), str(root), bad[0]
        )


@functools.lru_cache(maxsize=4)
def _readable(root: Path, signature: tuple) -> tuple[list[str], int, tuple[str, ...]]:
    """Return (readable names, their pixel count, unreadable names), from each file's header.

    ``signature`` (relative path, mtime, byte size of every file) keys the cache, so changed
    files are checked again.
    """
    good, bad, pixels = [], [], 0
    for name, *_ in signature:
        try:
            _, width, height = image_header(root / name, name)
        except UnreadableImageError:
            bad.append(name)
            continue
        good.append(name)
        pixels += width * height
    return good, pixels, tuple(bad)


def scan_folder(path: str | None) -> FolderScan:
    """Find the readable images under ``path`` and their classes.

    Raises:
        ValueError: the folder is missing, not a folder, or holds no readable image.
    """
    if not path:
        raise ValueError("folder dataset needs a path: write it as 'folder:PATH'")
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
    names, pixels, bad = _readable(root, signature)
    if not names:
        _report_unreadable(root, bad, len(files))
    parts = [name.split("/") for name in names]
    if all(len(p) >= 2 for p in parts):  # every image inside a class folder
        folders = sorted({p[0] for p in parts})
        groups = [folders.index(p[0]) for p in parts]
        classes = [_printable(name) for name in folders]
        return FolderScan(root, names, groups, classes, pixels, bad)
    return FolderScan(root, names, [0] * len(names), None, pixels, bad)


class FolderImages(FileImages):
    """The images of a folder, read from disk when they are needed (see the module docstring).

    Args:
        root: the folder.
        names: the relative paths of its images; labels, class_names, image_size: as
            ``FileImages``.
        decoded: each image already decoded, (3, H, W) uint8 (the in-memory way), or None.
    """

    def __init__(
        self, root: Path, names, labels, class_names, image_size: int, decoded=None
    ) -> None:
        super().__init__(names, labels, class_names, image_size, "folder")
        self.root = root
        self.paths = self.names
        self.decoded = None if decoded is None else list(decoded)
        self.in_memory = decoded is not None

    def read_bytes(self, index: int) -> bytes:
        """Return the bytes of image ``index``'s file."""
        return (self.root / self.names[index]).read_bytes()

    def decode(self, index: int) -> Tensor:
        """Return image ``index`` at full resolution: (3, H, W) uint8."""
        if self.decoded is not None:
            return self.decoded[index]
        return super().decode(index)


@functools.lru_cache(maxsize=2)
def _decode_all(root: Path, names: tuple[str, ...]) -> tuple[tuple, tuple, tuple]:
    """Decode every image at full resolution.

    Returns:
        The decoded images (tensors (3, H, W) uint8), their names, and the names of the files
        that failed to decode.
    """
    images, kept, bad = [], [], []
    for name in names:
        try:
            images.append(decode_rgb((root / name).read_bytes(), name))
            kept.append(name)
        except (UnreadableImageError, OSError):
            bad.append(name)
    return tuple(images), tuple(kept), tuple(bad)


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
    image_size: int | None = None,
) -> FolderImages:
    """Return the train (80%) or test (20%) split of the images under ``path``.

    Args:
        path: a folder, searched recursively.
        train: which split.
        seed: unused: the split depends on file names only, so runs stay comparable.
        download: unused; nothing is downloaded.
        image_size: side S of the views and of the evaluation images (default 224).

    Raises:
        ValueError: the folder is missing, not a folder, or holds no readable image.
    """
    size = IMAGE_SIZE if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"--image-size must be an integer >= 1, got {image_size!r}")
    scan = scan_folder(path)
    names, groups, decoded, bad = scan.names, scan.groups, None, scan.unreadable
    if 3 * scan.pixels <= IN_MEMORY_BYTES:  # files that fail to decode are dropped first
        images, kept, failed = _decode_all(scan.root, tuple(names))
        bad = tuple(sorted(bad + failed))
        position = {name: i for i, name in enumerate(names)}
        groups = [groups[position[name]] for name in kept]
        names, decoded = list(kept), images
    _report_unreadable(scan.root, bad, len(names) + len(bad))
    index = split_indices(names, groups, train)
    labels = torch.tensor([groups[i] for i in index]) if scan.class_names else None
    split = "train" if train else "test"
    how = "decoded once and held in memory" if decoded else f"streamed from {scan.root}"
    log.info("folder: %d %s images at %d px, %s", len(index), split, size, how)
    return FolderImages(
        scan.root,
        [names[i] for i in index],
        labels,
        scan.class_names,
        size,
        None if decoded is None else [decoded[i] for i in index],
    )


__all__ = [
    "EXTENSIONS",
    "IMAGE_SIZE",
    "IN_MEMORY_BYTES",
    "FolderImages",
    "FolderScan",
    "build_folder",
    "scan_folder",
    "split_indices",
]

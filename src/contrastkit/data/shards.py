"""``shards:DIR``: images packed in tar files, the WebDataset layout, for many processes.

``contrastkit shard folder:PATH --out DIR`` (``write_shards``) writes ``DIR/train-000000.tar``,
``train-000001.tar``... and ``test-000000.tar``... (the folder's own split, ``folders.py``), each
holding ``--shard-size`` samples as ``{key}.jpg`` (the file's own bytes and extension) and, when
the folder has class sub-folders, ``{key}.cls`` (the class index as text), in a shuffled order so
that a shard mixes the classes; ``DIR/meta.json`` names the classes. Shards written by other
tools in the same layout are read too (without meta.json the classes are named by their index).

Reading (``build_shards``): the tar headers of the split's shards are indexed once (where each
image's bytes start and how many there are, a header check of each image as for folders), then
``FileImages`` reads an image's bytes at that offset when a batch needs it: nothing is
extracted, nothing is held in memory. Samples are numbered shard by shard, and ``shard_sizes``
tells the trainer where each shard starts: it gives every process its own shards each epoch
(``contrastkit.training.batches``), so a process opens only its own files.

Unreadable members (not an image, corrupt, a decompression bomb) and unreadable tar files are
skipped with one warning that counts them; a split with no readable image is an error.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

import torch

from contrastkit.data.decode import UnreadableImageError, decode_rgb, image_header
from contrastkit.data.folders import EXTENSIONS, IMAGE_SIZE, scan_folder, split_indices
from contrastkit.data.streaming import FileImages

log = logging.getLogger(__name__)

META_FILE = "meta.json"
SPLITS = ("train", "test")
HEADER_BYTES = 1 << 16  # the first bytes of each image read when indexing, for its header
_IMAGE_EXTENSIONS = tuple(e.lstrip(".") for e in EXTENSIONS)


@dataclass(frozen=True)
class ShardIndex:
    """Where the images of one split lie in its shards.

    Attributes:
        shards: the tar files, in order.
        shard_sizes: the readable images of each shard.
        members: for each image, (shard number, byte offset, byte size, member name).
        labels: each image's class, or -1 (none in the shard).
        unreadable: names of the members and shards that were skipped.
    """

    shards: tuple[Path, ...]
    shard_sizes: tuple[int, ...]
    members: tuple[tuple[int, int, int, str], ...]
    labels: tuple[int, ...]
    unreadable: tuple[str, ...]


_END_BYTES = 2 * tarfile.BLOCKSIZE  # a complete tar file ends with two zero blocks


def _index_shard(number: int, path: Path) -> tuple[list, list, list]:
    """Return (members, labels, unreadable names) of one tar file."""
    images: dict[str, tuple] = {}
    classes: dict[str, int] = {}
    bad: list[str] = []
    size = path.stat().st_size
    with tarfile.open(path, "r:") as tar, path.open("rb") as raw:
        for member in tar:
            if not member.isfile():
                continue
            directory, _, base = member.name.rpartition("/")
            stem, _, ext = base.partition(".")  # WebDataset: the key ends at the first dot
            key = f"{directory}/{stem}"
            if ext.lower() == "cls":
                text = tar.extractfile(member).read().decode("ascii", errors="replace").strip()
                classes[key] = int(text) if text.lstrip("-").isdigit() else -1
            elif ext.lower() in _IMAGE_EXTENSIONS:
                if member.offset_data + member.size > size:  # cut off with the file
                    bad.append(f"{path.name}:{member.name} (truncated)")
                    continue
                raw.seek(member.offset_data)
                try:
                    image_header(raw.read(min(member.size, HEADER_BYTES)), member.name)
                except UnreadableImageError:
                    bad.append(f"{path.name}:{member.name}")
                    continue
                images[key] = (number, member.offset_data, member.size, member.name)
        raw.seek(max(size - _END_BYTES, 0))
        if size % tarfile.BLOCKSIZE or raw.read().strip(b"\0"):  # no end-of-archive blocks
            bad.append(f"{path.name} (truncated: the members after byte {size:,} are lost)")
    keys = list(images)
    return [images[k] for k in keys], [classes.get(k, -1) for k in keys], bad


@functools.lru_cache(maxsize=4)
def _index(paths: tuple[Path, ...], signature: tuple) -> ShardIndex:
    """Index the shards ``paths``; ``signature`` (their mtimes and sizes) keys the cache."""
    members, labels, sizes, bad = [], [], [], []
    for number, path in enumerate(paths):
        try:
            found, classes, skipped = _index_shard(number, path)
        except (tarfile.TarError, OSError) as err:
            log.debug("unreadable shard %s: %s", path, err)
            found, classes, skipped = [], [], [f"{path.name} (not a readable tar file)"]
        members += found
        labels += classes
        sizes.append(len(found))
        bad += skipped
    return ShardIndex(paths, tuple(sizes), tuple(members), tuple(labels), tuple(bad))


@functools.lru_cache(maxsize=8)
def _warn(root: Path, split: str, bad: tuple[str, ...]) -> None:
    log.warning(
        "skipped %d unreadable image(s) or shard(s) in the %s shards of %s (first: %r)",
        len(bad),
        split,
        root,
        bad[0],
    )


class ShardImages(FileImages):
    """The images of a split's shards, read at their offsets (see the module docstring).

    Attributes:
        shard_sizes: the images of each shard; the images of shard k follow those of shard k-1.
        shards: the tar files.
    """

    def __init__(self, index: ShardIndex, class_names, image_size: int) -> None:
        labelled = class_names is not None or any(y >= 0 for y in index.labels)
        labels = torch.tensor(index.labels) if labelled and index.labels else None
        names = [f"{index.shards[s].name}:{name}" for s, _, _, name in index.members]
        super().__init__(names, labels, class_names, image_size, "shards")
        self.shards = index.shards
        self.shard_sizes = index.shard_sizes
        self.members = index.members

    def read_bytes(self, index: int) -> bytes:
        """Return the bytes of image ``index``, read from its shard at its offset."""
        shard, offset, size, _ = self.members[index]
        with self.shards[shard].open("rb") as file:
            file.seek(offset)
            return file.read(size)


def _split_shards(root: Path, split: str) -> list[Path]:
    shards = sorted(root.glob(f"{split}-*.tar"))
    if not shards and split == "test":
        shards = sorted(root.glob("train-*.tar"))
        if shards:
            log.warning("shards %s have no test-*.tar: evaluating on the training shards", root)
    return shards


def build_shards(
    path: str | None,
    *,
    train: bool = True,
    seed: int = 0,
    download: bool = False,
    image_size: int | None = None,
) -> ShardImages:
    """Return the train or test split of the shards in folder ``path``.

    Args:
        path: the folder ``contrastkit shard`` wrote (``train-*.tar``, ``test-*.tar``).
        train: which split.
        seed, download: unused.
        image_size: side S of the views and of the evaluation images (default 224).

    Raises:
        ValueError: the folder is missing, holds no shards, or no readable image.
    """
    size = IMAGE_SIZE if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"--image-size must be an integer >= 1, got {image_size!r}")
    if not path:
        raise ValueError("shards dataset needs a path: write it as 'shards:DIR'")
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"shard folder {path!r} does not exist or is not a folder")
    split = "train" if train else "test"
    shards = _split_shards(root, split)
    if not shards:
        raise ValueError(
            f"shard folder {path!r} holds no {split}-*.tar file; write shards with "
            "'contrastkit shard folder:PATH --out DIR'"
        )
    signature = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in shards)
    index = _index(tuple(shards), signature)
    if not index.members:
        raise ValueError(
            f"shard folder {path!r} has no readable image in its {split} shards "
            f"({len(index.unreadable)} unreadable, first: {index.unreadable[:1]})"
        )
    if index.unreadable:
        _warn(root, split, index.unreadable)
    meta = root / META_FILE
    class_names = json.loads(meta.read_text()).get("class_names") if meta.exists() else None
    if class_names is None and any(y >= 0 for y in index.labels):
        class_names = [str(c) for c in range(max(index.labels) + 1)]
    log.info(
        "shards: %d %s images in %d shard(s) of %s, at %d px",
        len(index.members),
        split,
        len(shards),
        root,
        size,
    )
    return ShardImages(index, class_names, size)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def write_shards(folder: str, out: str | os.PathLike, shard_size: int, seed: int = 0) -> dict:
    """Pack the images of ``folder`` into tar shards under ``out`` (see the module docstring).

    Every image is decoded once to check it; the unreadable ones are skipped with one warning.
    Each shard is written under a temporary name and renamed when complete, meta.json last.

    Returns:
        What was written: ``{"train": [shard names], "test": [...], "images": {split: n},
        "skipped": n}``.

    Raises:
        ValueError: a bad ``shard_size``, an ``out`` that already holds shards, or a folder
            with no readable image.
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"--shard-size must be an integer >= 1, got {shard_size!r}")
    out = Path(out).expanduser()
    if out.exists() and (any(out.glob("*.tar")) or (out / META_FILE).exists()):
        raise ValueError(f"--out {str(out)!r} already holds shards; choose an empty folder")
    scan = scan_folder(folder)
    readable, skipped = [], len(scan.unreadable)
    for i, name in enumerate(scan.names):
        try:
            decode_rgb((scan.root / name).read_bytes(), name)
            readable.append(i)
        except (UnreadableImageError, OSError):
            skipped += 1
    if not readable:
        raise ValueError(f"folder {folder!r} has no readable image")
    if skipped:
        log.warning("skipped %d unreadable image file(s) under %s", skipped, scan.root)
    names = [scan.names[i] for i in readable]
    groups = [scan.groups[i] for i in readable]
    out.mkdir(parents=True, exist_ok=True)
    written: dict = {"images": {}, "skipped": skipped}
    for train in (True, False):
        split = "train" if train else "test"
        order = split_indices(names, groups, train)
        random.Random(seed).shuffle(order)
        written[split] = _write_split(out, split, order, names, groups, scan, shard_size)
        written["images"][split] = len(order)
    meta = {"format": "webdataset", "class_names": scan.class_names, **written}
    temporary = out / f".{META_FILE}.tmp"
    temporary.write_text(json.dumps(meta, indent=2))
    os.replace(temporary, out / META_FILE)
    return written


def _write_split(out, split, order, names, groups, scan, shard_size) -> list[str]:
    shards = []
    for number, start in enumerate(range(0, len(order), shard_size)):
        name = f"{split}-{number:06d}.tar"
        temporary = out / f".{name}.tmp"
        with tarfile.open(temporary, "w") as tar:
            for i in order[start : start + shard_size]:
                key = f"{i:09d}"
                ext = Path(names[i]).suffix.lower().lstrip(".")
                _add(tar, f"{key}.{ext}", (scan.root / names[i]).read_bytes())
                if scan.class_names:
                    _add(tar, f"{key}.cls", str(groups[i]).encode())
        os.replace(temporary, out / name)
        shards.append(name)
    return shards


__all__ = ["META_FILE", "ShardImages", "ShardIndex", "build_shards", "write_shards"]

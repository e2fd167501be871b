"""Your own image-text pairs for CLIP: ``--data pairs:CSV``.

The CSV needs a header with the columns ``image`` and ``caption``; ``image`` is a path relative
to the CSV's folder (or absolute). An optional ``label`` column gives class names used only for
evaluation (zero-shot accuracy). Example::

    image,caption,label
    photos/cat1.jpg,a cat sleeping on a sofa,cat
    photos/dog7.png,a brown dog in the snow,dog

Images are loaded with PIL when a sample is read, converted to RGB and resized to
``image_size`` x ``image_size``. Every row is checked when the dataset is built, so a bad file is
reported before training starts. The same rows serve as the training and the held-out split;
pass another CSV to ``contrastkit zeroshot --data pairs:OTHER.csv`` to evaluate on new pairs.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

IMAGE_SIZE = 64
REQUIRED_COLUMNS = ("image", "caption")


class ImageTextPairs(Dataset):
    """Image files with one caption each; ``ds[i] -> (x: (3, S, S) in [0, 1], y: int)``.

    Args:
        image_paths: N image files.
        captions: N captions, none empty.
        labels: optional N class names (for evaluation only).
        image_size: S, the side of the square every image is resized to.
        source: the CSV the pairs come from; error messages then name its rows.

    Raises:
        ValueError: the counts differ, a caption is empty, or images are missing or unreadable
            (how many, and the first).
    """

    kind = "images"
    name = "pairs"

    def __init__(
        self,
        image_paths: Sequence[str | Path],
        captions: Sequence[str],
        labels: Sequence[str] | None = None,
        image_size: int = IMAGE_SIZE,
        source: str | None = None,
    ) -> None:
        if len(image_paths) != len(captions):
            raise ValueError(
                f"image_paths and captions must have the same length, got {len(image_paths)} "
                f"images and {len(captions)} captions"
            )
        if labels is not None and len(labels) != len(captions):
            raise ValueError(
                f"labels must have one entry per caption, got {len(labels)} for {len(captions)}"
            )
        if not captions:
            raise ValueError("image_paths and captions are empty; expected at least one pair")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        for i, caption in enumerate(captions):
            if not isinstance(caption, str) or not caption.strip():
                raise ValueError(f"captions[{i}] is empty; every image needs a caption")
        self.paths = [Path(p) for p in image_paths]
        _check_images(
            self.paths,
            (lambda i: f"row {i + 1} of {source}") if source else "image_paths[{}]".format,
        )
        self.captions = [c.strip() for c in captions]
        self.image_size = int(image_size)
        self.input_shape = (3, self.image_size, self.image_size)
        if labels is None:
            self.class_names = None
            self.labels = None
        else:
            self.class_names = sorted(set(labels))
            index = {name: k for k, name in enumerate(self.class_names)}
            self.labels = torch.tensor([index[name] for name in labels], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        with Image.open(self.paths[index]) as image:
            image = image.convert("RGB").resize(
                (self.image_size, self.image_size), Image.Resampling.BILINEAR
            )
            pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
        y = int(self.labels[index]) if self.labels is not None else -1
        return pixels.permute(2, 0, 1).contiguous(), y  # (3, S, S)


def _check_images(paths: list[Path], where) -> None:
    """Raise ValueError naming how many images are missing or unreadable, and the first."""
    not_files = [i for i, p in enumerate(paths) if not p.is_file()]
    missing = [i for i in not_files if not paths[i].exists()]
    if missing:
        first = missing[0]
        raise ValueError(
            f"{len(missing)} of {len(paths)} images do not exist; the first is "
            f"{where(first)}: {paths[first]}"
        )
    if not_files:  # a folder, a device such as /dev/zero, a pipe
        first = not_files[0]
        kind = "a folder" if paths[first].is_dir() else "not a regular file"
        raise ValueError(
            f"{len(not_files)} of {len(paths)} image paths are not image files; the first is "
            f"{where(first)}: {paths[first]} ({kind})"
        )
    unreadable = []
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as image:
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
            unreadable.append(i)  # a decompression bomb: more pixels than PIL's safety limit
    if unreadable:
        first = unreadable[0]
        raise ValueError(
            f"{len(unreadable)} of {len(paths)} images cannot be read as images; the first is "
            f"{where(first)}: {paths[first]}"
        )


def read_pairs_csv(csv_path: str | Path, image_size: int = IMAGE_SIZE) -> ImageTextPairs:
    """Read a CSV of (image, caption[, label]) rows; image paths are relative to its folder.

    Raises:
        ValueError: the file is missing or empty, a column is missing (named), a row has too
            few or too many fields or an empty caption (its row and line numbers), or images
            are missing or unreadable (how many, and the first).
    """
    csv_path = Path(csv_path).expanduser()
    if not csv_path.is_file():
        raise ValueError(f"pairs CSV {str(csv_path)!r} does not exist or is not a file")
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ValueError(
                    f"pairs CSV {csv_path.name} is missing the column(s) {', '.join(missing)}; its "
                    f"header must name image,caption (found: {', '.join(columns) or 'no header'})"
                )
            reader.fieldnames = columns
            has_label = "label" in columns
            images, captions, labels = [], [], []
            for row_number, row in enumerate(reader, start=1):
                line = reader.line_num
                if None in row:
                    raise ValueError(
                        f"pairs CSV {csv_path.name} row {row_number} (line {line}) has more fields "
                        f"than its header ({len(columns)}: {', '.join(columns)})"
                    )
                image, caption = row["image"], row["caption"]
                if image is None or caption is None:
                    raise ValueError(
                        f"pairs CSV {csv_path.name} row {row_number} (line {line}) has an image "
                        "but no caption; every row needs both"
                    )
                if not image.strip():
                    raise ValueError(
                        f"pairs CSV {csv_path.name} row {row_number} (line {line}) has an empty "
                        "image"
                    )
                if not caption.strip():
                    raise ValueError(
                        f"pairs CSV {csv_path.name} row {row_number} (line {line}) has an empty "
                        "caption; every image needs a caption"
                    )
                images.append(csv_path.parent / image.strip())
                captions.append(caption)
                if has_label:
                    labels.append((row["label"] or "").strip())
    except UnicodeDecodeError as err:
        raise ValueError(f"pairs CSV {csv_path.name} is not UTF-8 text: {err}") from None
    except csv.Error as err:
        if "field larger than field limit" in str(err):
            raise ValueError(
                f"pairs CSV {csv_path.name} has a field over {csv.field_size_limit():,} "
                "characters; captions must be shorter"
            ) from None
        raise ValueError(f"pairs CSV {csv_path.name} is not a valid CSV file: {err}") from None
    if not images:
        raise ValueError(f"pairs CSV {csv_path.name} has a header but no rows")
    if has_label and not all(labels):
        first = labels.index("") + 1
        raise ValueError(f"pairs CSV {csv_path.name} row {first} has an empty label")
    log.info("pairs: %d image-caption pairs from %s", len(images), csv_path)
    return ImageTextPairs(
        images, captions, labels if has_label else None, image_size, source=csv_path.name
    )


def build_pairs(
    path: str | None = None, *, train: bool = True, seed: int = 0, download: bool = False
) -> ImageTextPairs:
    """Build ``--data pairs:CSV`` (both splits are the CSV's rows; ``seed`` is unused)."""
    if not path:
        raise ValueError("--data pairs needs a CSV file: write it as 'pairs:PATH/TO/pairs.csv'")
    return read_pairs_csv(path)


__all__ = ["IMAGE_SIZE", "ImageTextPairs", "build_pairs", "read_pairs_csv"]

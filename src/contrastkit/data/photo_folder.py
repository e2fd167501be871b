"""A folder of JPEG photos made from the photographs scikit-image ships, never downloaded.

``make_photo_folder(out, n)`` writes ``out/class_XX/NNNNNN.jpg``: n images of 500x375 pixels
(a quarter of them portrait, 375x500), each a random crop of one source photograph, resized,
maybe flipped and with its colours shifted. Class c is source photo ``PHOTOS[c]``, so the labels
mean something: a kNN on good features separates the classes. It is the test folder of
``benchmarks/folder_pipeline.py`` (thousands of images) and of the tests (a few dozen).

Only files inside scikit-image's own ``data`` folder are read (the photos its wheel carries);
``skimage.data`` functions that fetch with ``pooch`` are never called, so nothing needs a network.
Needs scikit-image (``pip install "contrastkit[bench]"``).

Every image is a pure function of (seed, its index): image k is the same whatever n is, and two
calls with the same arguments write identical files. Each file is written under a temporary
name and renamed, so a reader never sees half a JPEG.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
from PIL import Image

INSTALL_HINT = 'pip install "contrastkit[bench]"'

# the photographs in scikit-image's wheel: colour ones first, then grey ones (tinted by the
# colour shift); class c is PHOTOS[c]
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "retina.jpg",
    "camera.png",
    "coins.png",
    "moon.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "cell.png",
)
PORTRAIT_FRACTION = 0.25
MIN_SCALE = 0.35  # smallest crop, as a fraction of the largest crop of the right shape


def _photo_dir() -> Path:
    """Return scikit-image's data folder (found without importing scikit-image)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"make_photo_folder needs scikit-image; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _load_photos(classes: int) -> list[np.ndarray]:
    """Return the first ``classes`` source photos as (H, W, 3) uint8 arrays."""
    folder = _photo_dir()
    photos = []
    for name in PHOTOS[:classes]:
        with Image.open(folder / name) as image:
            photos.append(np.asarray(image.convert("RGB")))
    return photos


def _check(num_images: int, classes: int, size: tuple[int, int], quality: int) -> None:
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"num_images must be a positive int, got {num_images!r}")
    if not isinstance(classes, int) or not 1 <= classes <= len(PHOTOS):
        raise ValueError(f"classes must be an int in [1, {len(PHOTOS)}], got {classes!r}")
    if len(size) != 2 or not all(isinstance(s, int) and s >= 8 for s in size):
        raise ValueError(f"size must be (width, height), two ints >= 8, got {size!r}")
    if not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an int in [1, 95], got {quality!r}")


def make_photo(photo: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Return one random view of ``photo``: a crop of ``size``'s shape, resized to ``size``.

    Args:
        photo: (H, W, 3) uint8 source photograph.
        size: (width, height) of the result.
        rng: the source of every random choice (crop, flip, colour shift).
    """
    height, width = photo.shape[:2]
    aspect = size[0] / size[1]
    # the largest crop of the target's aspect ratio that fits, then a random fraction of it
    full_w = min(width, height * aspect)
    scale = np.sqrt(rng.uniform(MIN_SCALE, 1.0))  # of the side, so area is uniform
    crop_w = max(1, round(full_w * scale))
    crop_h = max(1, min(height, round(crop_w / aspect)))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    crop = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
    image = crop.resize(size, Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    gain = rng.uniform(0.75, 1.25, size=3)  # per channel: a colour cast
    offset = rng.uniform(-20.0, 20.0)  # brightness
    pixels = np.asarray(image, dtype=np.float32) * gain + offset  # (h, w, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_photo_folder(
    out: Path | str,
    num_images: int,
    *,
    classes: int = 10,
    size: tuple[int, int] = (500, 375),
    seed: int = 0,
    quality: int = 90,
) -> Path:
    """Write ``num_images`` JPEG photos into ``out/class_XX/NNNNNN.jpg`` and return ``out``.

    Image k belongs to class ``k % classes`` (the classes are balanced) and is a random crop of
    source photo ``PHOTOS[k % classes]``; a quarter of the images are portrait (``size``
    swapped). Existing files of the same names are replaced.

    Args:
        out: the folder to write into (created if needed).
        num_images: how many images to write.
        classes: how many classes, one source photo each (at most ``len(PHOTOS)``).
        size: (width, height) of a landscape image, in pixels.
        seed: fixes every random choice; image k depends on (seed, k) only.
        quality: JPEG quality (1 to 95).

    Raises:
        ValueError: a non-positive count, too many classes, a bad size or quality.
        ImportError: scikit-image is not installed.
    """
    _check(num_images, classes, tuple(size), quality)
    out = Path(out)
    photos = _load_photos(classes)
    for c in range(classes):
        (out / f"class_{c:02d}").mkdir(parents=True, exist_ok=True)
    for k in range(num_images):
        rng = np.random.default_rng([seed, k])
        shape = tuple(size) if rng.random() >= PORTRAIT_FRACTION else (size[1], size[0])
        image = make_photo(photos[k % classes], shape, rng)
        path = out / f"class_{k % classes:02d}" / f"{k:06d}.jpg"
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        image.save(temporary, format="JPEG", quality=quality)
        os.replace(temporary, path)
    return out


__all__ = ["PHOTOS", "make_photo", "make_photo_folder"]

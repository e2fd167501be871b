"""Image files to uint8 tensors: one fast decoder, one check for files that must be skipped.

``decode_rgb`` decodes a file's bytes with torchvision's decoders (libjpeg-turbo for JPEG,
libpng for PNG, libwebp, GIF) and falls back to PIL for the formats torchvision does not read
(BMP, TIFF); ``benchmarks/folder_pipeline.py`` measures it against PIL. Before anything is
decoded, the header is read with PIL (a few hundred bytes, no pixels) to refuse "decompression
bombs": images of more than ``MAX_PIXELS`` pixels, which would take gigabytes to decode.

Every failure (not an image, corrupt, truncated, too large) is one exception type,
``UnreadableImageError``, so that the data sets can skip such a file and count it.

Letters used in shapes: H, W the image's own height and width, S a square side.
"""

from __future__ import annotations

import io
import os
import warnings

import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image

# PIL's own limit (89.5 million pixels); above it PIL warns, and at twice it PIL refuses
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
_TORCHVISION_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")


class UnreadableImageError(ValueError):
    """A file that is not a decodable image of at most ``MAX_PIXELS`` pixels."""


def image_header(data: bytes | os.PathLike | str, name: str = "image") -> tuple[str, int, int]:
    """Return ``(format, width, height)`` read from the header of an image file or its bytes.

    Given a path, only the first bytes of the file are read.

    Raises:
        UnreadableImageError: not an image PIL recognises, or more than ``MAX_PIXELS`` pixels.
    """
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                kind, (width, height) = image.format or "", image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(f"{name}: not a readable image ({err})") from err
    if width * height > MAX_PIXELS:
        raise UnreadableImageError(
            f"{name}: {width}x{height} pixels is more than the {MAX_PIXELS:,} an image may have "
            "(a decompression bomb?)"
        )
    return kind, width, height


def decode_rgb(data: bytes, name: str = "image") -> Tensor:
    """Decode an image file's bytes to RGB: (3, H, W) uint8.

    Raises:
        UnreadableImageError: not an image, corrupt or truncated, or too large (``image_header``).
    """
    kind, _, _ = image_header(data, name)
    try:
        if kind in _TORCHVISION_FORMATS:
            buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            image = decode_image(buffer, mode=ImageReadMode.RGB)
            return image if image.ndim == 3 else image[0]  # an animated GIF: its first frame
        with Image.open(io.BytesIO(data)) as pil:
            return TF.pil_to_tensor(pil.convert("RGB"))
    except (RuntimeError, OSError, ValueError, SyntaxError) as err:
        raise UnreadableImageError(f"{name}: corrupt or truncated {kind} ({err})") from err


def fit_square(image: Tensor, size: int) -> Tensor:
    """Resize the short side to ``size`` and crop the centre: (3, H, W) -> (3, S, S) uint8.

    What evaluation sees of a full-resolution image (``PIL.ImageOps.fit``'s framing; bilinear
    with antialiasing).
    """
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    resized = (max(size, round(height * scale)), max(size, round(width * scale)))
    image = TF.resize(image, list(resized), antialias=True)
    return TF.center_crop(image, [size, size])


__all__ = ["MAX_PIXELS", "UnreadableImageError", "decode_rgb", "fit_square", "image_header"]

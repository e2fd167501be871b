"""Encode images as PNG data URLs, so the page shows server-made pictures with no extra request."""

from __future__ import annotations

import base64
import io

import torch
from PIL import Image
from torch import Tensor


def png_data_url(image: Tensor) -> str:
    """Encode an image (3, H, W) in [0, 1] as a ``data:image/png;base64,...`` URL."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

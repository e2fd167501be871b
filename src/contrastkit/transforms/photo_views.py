"""One photo's views made in uint8 on a CPU: the CPU backend of ``FullResolutionViews``.

On a CPU the cheapest way to make a view of a photo is to never leave 8-bit pixels: each step
below is one pass of C code (torchvision, Pillow or OpenCV) over a (S, S) image, run in the
DataLoader workers, and the float conversion happens once per batch. Per view, in this order
(the same steps, draws and probabilities as ``contrastkit.transforms.batched``, from the same
``CropSpec``):

1. the random resized crop, cut from the full-resolution photo and resized in one call
   (``resized_crop``: torchvision's uint8 bilinear resize, antialiased when shrinking, faster
   than Pillow's; the same crop the accelerator path cuts), then the flip and rotation;
2. the colour jitter as one colour matrix (``Image.convert("RGB", matrix)``): brightness,
   contrast (around the crop's mean luma), saturation and the hue rotation in YIQ space are all
   linear in RGB, so they compose into one 3x4 matrix, as NVIDIA DALI's ``color_twist`` does.
   Unlike torchvision, which clips to [0, 255] after each of the four steps, the pixels are
   clipped once, at the end;
3. grayscale (Pillow's luma; a grey view stays one band until the end, so that the steps after
   it do a third of the work), Gaussian blur (OpenCV's ``GaussianBlur``: the batched blur's
   kernel, the Gaussian of the drawn sigma over SimCLR's 10% of the side, cut at 3 sigma where
   that is shorter, with its reflected border, in 8-bit fixed point; several times faster than
   Pillow's box-blur approximation), solarisation.

Randomness: view v uses columns v * NUM_DRAWS to (v + 1) * NUM_DRAWS - 1 of the sample's draws,
with the meaning documented in ``contrastkit.transforms.batched``.

Letters used in shapes: H/W the photo's size, S the view's side.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import Tensor

from contrastkit.transforms.batched import _GRAY, _RGB_TO_YIQ, NUM_DRAWS
from contrastkit.transforms.recipes import BLUR_SIGMA, SOLARIZE_THRESHOLD, CropSpec

# One thread for OpenCV in this process: the DataLoader workers are the parallelism, and a
# process whose OpenCV thread pool has started cannot fork workers safely (they hang in it).
cv2.setNumThreads(1)
_TO_YIQ = np.array(_RGB_TO_YIQ)
_FROM_YIQ = np.linalg.inv(_TO_YIQ)
_LUMA = np.array(_GRAY)


def colour_matrix(spec: CropSpec, u: np.ndarray, mean_luma: float) -> tuple[float, ...]:
    """Return the 12 numbers of Pillow's RGB matrix for one view's colour jitter.

    Args:
        spec: the view (its ``jitter`` strengths).
        u: (4,) draws for brightness, contrast, saturation and hue.
        mean_luma: the crop's mean luma, in [0, 255].
    """
    hue = spec.jitter[3]
    b, c, s = (
        1 + strength * (2 * d - 1) for strength, d in zip(spec.jitter[:3], u[:3], strict=True)
    )
    angle = 2 * math.pi * hue * (2 * u[3] - 1)
    rotation = np.array(
        [[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]]
    )
    hue_matrix = _FROM_YIQ @ rotation @ _TO_YIQ
    saturate = s * np.eye(3) + (1 - s) * np.outer(np.ones(3), _LUMA)
    matrix = hue_matrix @ saturate * (c * b)  # (3, 3)
    offset = (1 - c) * b * mean_luma  # contrast around the brightened mean; grey is kept by both
    return tuple(float(v) for row in matrix for v in (*row, offset))


def resized_crop(image: Tensor, box: tuple, size: int) -> Tensor:
    """Cut ``box`` = ``(top, left, h, w)`` from (3, H, W) uint8 and resize it to (3, S, S) uint8.

    Bilinear with antialiasing. On an accelerator the resize runs in float (the antialiased
    uint8 kernels are the CPU's).
    """
    top, left, h, w = box
    region = image[:, top : top + h, left : left + w]
    if region.device.type == "cpu":
        return TF.resize(region, [size, size], antialias=True)
    resized = TF.resize(region.float(), [size, size], antialias=True)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def photo_view(photo: Tensor, spec: CropSpec, box: tuple, u: np.ndarray) -> Tensor:
    """Make one view of a photo: (3, H, W) uint8 -> (3, S, S) uint8.

    Args:
        photo: the RGB photo at full resolution, on the CPU.
        spec: the view.
        box: ``(top, left, h, w)`` of its crop (``full_resolution.crop_box``).
        u: (NUM_DRAWS,) the view's draws.
    """
    crop = resized_crop(photo, box, spec.size)
    view = Image.fromarray(crop.permute(1, 2, 0).contiguous().numpy())
    if u[4] < spec.flip_p:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if u[15] < spec.rotate_p and spec.degrees > 0:
        view = view.rotate(spec.degrees * (2 * u[14] - 1), Image.Resampling.BILINEAR)
    if spec.jitter_p > 0 and u[9] < spec.jitter_p:
        small = np.asarray(view.reduce(8), dtype=np.float64)  # the mean of a 1/8 copy
        mean_luma = float(small.reshape(-1, 3).mean(0) @ _LUMA)
        view = view.convert("RGB", colour_matrix(spec, u[5:9], mean_luma))
    if u[11] < spec.gray_p:
        view = view.convert("L")  # (S, S): one band, copied to three at the end
    pixels = np.array(view)  # (S, S, 3) or (S, S) uint8
    if u[12] < spec.blur_p:
        sigma = float(BLUR_SIGMA[0] + (BLUR_SIGMA[1] - BLUR_SIGMA[0]) * u[10])
        k = min(spec.blur_kernel, 2 * math.ceil(3 * sigma) + 1)  # SimCLR's, or out to 3 sigma
        pixels = cv2.GaussianBlur(pixels, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
    if u[13] < spec.solarize_p:
        threshold = round(255 * SOLARIZE_THRESHOLD)
        pixels = np.where(pixels >= threshold, 255 - pixels, pixels).astype(np.uint8)
    if pixels.ndim == 2:
        return torch.from_numpy(pixels).expand(3, -1, -1)
    return torch.from_numpy(pixels).permute(2, 0, 1)


def photo_views(photo: Tensor, specs, boxes, u: Tensor) -> list[Tensor]:
    """Make the V views of one photo: (3, H, W) uint8 -> V x (3, S_v, S_v) uint8."""
    draws = u.double().numpy().reshape(len(specs), NUM_DRAWS)
    return [photo_view(photo, s, b, d) for s, b, d in zip(specs, boxes, draws, strict=True)]


def to_float(view: Tensor, spec: CropSpec) -> Tensor:
    """Return views (B, 3, S, S) uint8 as float32 in [0, 1], standardised if ``spec`` says so."""
    x = view.to(torch.float32).div_(255.0)
    if spec.mean is not None:
        mean = torch.tensor(spec.mean, device=x.device)[:, None, None]
        std = torch.tensor(spec.std, device=x.device)[:, None, None]
        x = (x - mean) / std
    return x


__all__ = [
    "colour_matrix",
    "photo_view",
    "photo_views",
    "resized_crop",
    "to_float",
]

"""View recipes for small inputs: Gaussian-noise views of points and the digits recipe.

Every recipe is a picklable callable mapping ONE raw sample to its list of views and drawing all
its randomness from torch's global RNG, which the trainer seeds per sample (exact resume).

The digits recipe is written with ``affine_grid``/``grid_sample`` rather than
``torchvision.transforms.v2.RandomAffine``: on a 1x8x8 image it costs about 60 us per view
instead of about 700 us (measured on the 2-core CI machine), and the trainer makes two views of
every sample every step.

Letters used in shapes: C channels, H/W height/width.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor


@functools.cache
def _base_grid(height: int, width: int) -> Tensor:
    """Return the pixel centres of an H x W image as (H, W, 3) homogeneous [-1, 1] coordinates."""
    ys = (torch.arange(height) * 2 + 1) / height - 1
    xs = (torch.arange(width) * 2 + 1) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1)


class NoiseViews:
    """Views of a point: ``x + std * noise``, one independent draw per view.

    Args:
        std: standard deviation of the Gaussian noise (0.3 in the toy experiment).
        num_views: how many views per sample.
    """

    def __init__(self, std: float = 0.3, num_views: int = 2) -> None:
        if std < 0:
            raise ValueError(f"std must be >= 0, got {std}")
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        self.std = float(std)
        self.num_views = int(num_views)

    def __call__(self, x: Tensor) -> list[Tensor]:
        """Return ``num_views`` noisy copies of x (any shape)."""
        return [x + self.std * torch.randn_like(x) for _ in range(self.num_views)]


class SmallImageViews:
    """Views of a small grayscale image: random affine, noise, random erasing (the digits recipe).

    Each view applies, in order: a random rotation (uniform in +-``degrees``), scale (uniform in
    ``scale``) and shift (uniform in +-``translate`` of the width and height) with zero padding
    and bilinear interpolation; additive Gaussian noise of std ``noise_std``, clamped to [0, 1];
    with probability ``erase_p``, one rectangle covering ``erase_scale`` of the image (aspect
    ratio log-uniform in 1/3..3) set to 0.

    Args:
        degrees: maximum rotation in degrees.
        translate: maximum shift as a fraction of the image side.
        scale: (min, max) zoom factor.
        noise_std: std of the additive pixel noise.
        erase_p: probability of erasing a rectangle.
        erase_scale: (min, max) fraction of the image area erased.
        num_views: how many views per sample.
    """

    def __init__(
        self,
        degrees: float = 10.0,
        translate: float = 0.1,
        scale: tuple[float, float] = (0.9, 1.1),
        noise_std: float = 0.05,
        erase_p: float = 0.25,
        erase_scale: tuple[float, float] = (0.02, 0.1),
        num_views: int = 2,
    ) -> None:
        lo, hi = (float(s) for s in scale)
        if not 0 < lo <= hi:
            raise ValueError(f"scale must be (min, max) with 0 < min <= max, got {scale}")
        e_lo, e_hi = (float(s) for s in erase_scale)
        if not 0 <= e_lo <= e_hi <= 1:
            raise ValueError(f"erase_scale must be (min, max) within [0, 1], got {erase_scale}")
        if not 0 <= erase_p <= 1 or degrees < 0 or translate < 0 or noise_std < 0:
            raise ValueError(
                "erase_p must be in [0, 1] and degrees, translate, noise_std >= 0, got "
                f"erase_p={erase_p}, degrees={degrees}, translate={translate}, "
                f"noise_std={noise_std}"
            )
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        self.degrees = float(degrees)
        self.translate = float(translate)
        self.scale = (lo, hi)
        self.noise_std = float(noise_std)
        self.erase_p = float(erase_p)
        self.erase_scale = (e_lo, e_hi)
        self.num_views = int(num_views)

    def __call__(self, x: Tensor) -> list[Tensor]:
        """Return ``num_views`` augmented copies of x: (C, H, W) in [0, 1]."""
        if x.ndim != 3:
            raise ValueError(f"x must be one (C, H, W) image, got shape {tuple(x.shape)}")
        return [self._view(x) for _ in range(self.num_views)]

    def _view(self, x: Tensor) -> Tensor:
        angle, zoom, shift_x, shift_y, erase_draw = torch.rand(5).tolist()
        angle = math.radians((2 * angle - 1) * self.degrees)
        zoom = self.scale[0] + (self.scale[1] - self.scale[0]) * zoom
        # the grid maps output pixel centres, in [-1, 1] coordinates, to input positions: the
        # inverse of the rotation/zoom, then the shift (what affine_grid computes, but cheaper)
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        tx = (2 * shift_x - 1) * 2 * self.translate
        ty = (2 * shift_y - 1) * 2 * self.translate
        theta = torch.tensor([[cos, sin], [-sin, cos], [tx, ty]], dtype=x.dtype)  # (3, 2)
        grid = (_base_grid(x.shape[1], x.shape[2]) @ theta)[None]  # (1, H, W, 2)
        view = F.grid_sample(x[None], grid, align_corners=False)[0]  # (C, H, W)
        if self.noise_std > 0:
            view = view.add_(torch.randn_like(view), alpha=self.noise_std).clamp_(0.0, 1.0)
        if erase_draw < self.erase_p:
            view = self._erase(view)
        return view

    def _erase(self, view: Tensor) -> Tensor:
        _, height, width = view.shape
        area_draw, ratio_draw, top_draw, left_draw = torch.rand(4).tolist()
        area = (
            height
            * width
            * (self.erase_scale[0] + (self.erase_scale[1] - self.erase_scale[0]) * area_draw)
        )
        ratio = math.exp(math.log(3.0) * (2 * ratio_draw - 1))
        h = min(height, max(1, round(math.sqrt(area * ratio))))
        w = min(width, max(1, round(math.sqrt(area / ratio))))
        top = int(top_draw * (height - h + 1))
        left = int(left_draw * (width - w + 1))
        view[:, top : top + h, left : left + w] = 0.0
        return view

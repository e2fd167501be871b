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

from contrastkit.transforms.recipes import NoiseRecipe, SmallImageRecipe


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
        recipe: ``std`` and ``num_views`` (``contrastkit.transforms.recipes.NoiseRecipe``).
    """

    def __init__(self, recipe: NoiseRecipe | None = None) -> None:
        self.recipe = recipe if recipe is not None else NoiseRecipe()

    def __call__(self, x: Tensor) -> list[Tensor]:
        """Return ``num_views`` noisy copies of x (any shape)."""
        std = self.recipe.std
        return [x + std * torch.randn_like(x) for _ in range(self.recipe.num_views)]


class SmallImageViews:
    """Views of a small grayscale image: random affine, noise, random erasing (the digits recipe).

    Each view applies, in order: a random rotation (uniform in +-``degrees``), scale (uniform in
    ``scale``) and shift (uniform in +-``translate`` of the width and height) with zero padding
    and bilinear interpolation; additive Gaussian noise of std ``noise_std``, clamped to [0, 1];
    with probability ``erase_p``, one rectangle covering ``erase_scale`` of the image (aspect
    ratio log-uniform in 1/3..3) set to 0.

    Args:
        recipe: the parameters (``contrastkit.transforms.recipes.SmallImageRecipe``).
    """

    def __init__(self, recipe: SmallImageRecipe | None = None) -> None:
        self.recipe = recipe if recipe is not None else SmallImageRecipe()

    def __call__(self, x: Tensor) -> list[Tensor]:
        """Return ``num_views`` augmented copies of x: (C, H, W) in [0, 1]."""
        if x.ndim != 3:
            raise ValueError(f"x must be one (C, H, W) image, got shape {tuple(x.shape)}")
        return [self._view(x) for _ in range(self.recipe.num_views)]

    def _view(self, x: Tensor) -> Tensor:
        r = self.recipe
        angle, zoom, shift_x, shift_y, erase_draw = torch.rand(5).tolist()
        angle = math.radians((2 * angle - 1) * r.degrees)
        zoom = r.scale[0] + (r.scale[1] - r.scale[0]) * zoom
        # the grid maps output pixel centres, in [-1, 1] coordinates, to input positions: the
        # inverse of the rotation/zoom, then the shift (what affine_grid computes, but cheaper)
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        tx = (2 * shift_x - 1) * 2 * r.translate
        ty = (2 * shift_y - 1) * 2 * r.translate
        theta = torch.tensor([[cos, sin], [-sin, cos], [tx, ty]], dtype=x.dtype)  # (3, 2)
        grid = (_base_grid(x.shape[1], x.shape[2]) @ theta)[None]  # (1, H, W, 2)
        view = F.grid_sample(x[None], grid, align_corners=False)[0]  # (C, H, W)
        if r.noise_std > 0:
            view = view.add_(torch.randn_like(view), alpha=r.noise_std).clamp_(0.0, 1.0)
        if erase_draw < r.erase_p:
            view = self._erase(view)
        return view

    def _erase(self, view: Tensor) -> Tensor:
        _, height, width = view.shape
        lo, hi = self.recipe.erase_scale
        area_draw, ratio_draw, top_draw, left_draw = torch.rand(4).tolist()
        area = height * width * (lo + (hi - lo) * area_draw)
        ratio = math.exp(math.log(3.0) * (2 * ratio_draw - 1))
        h = min(height, max(1, round(math.sqrt(area * ratio))))
        w = min(width, max(1, round(math.sqrt(area / ratio))))
        top = int(top_draw * (height - h + 1))
        left = int(left_draw * (width - w + 1))
        view[:, top : top + h, left : left + w] = 0.0
        return view

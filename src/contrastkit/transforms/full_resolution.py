"""Views cut from full-resolution images: the random resized crop first, then everything else.

A photo of 500x375 px is not first shrunk to the view size: as torchvision's
``RandomResizedCrop`` does, each view's crop box is drawn in the photo's own pixels and only the
crop is resized (bilinear with antialiasing) to the view's side, so a view at 8% of the area
keeps the photo's detail. Two backends, for where the views are made:

- on a CPU, ``photo_views`` makes each photo's finished views in uint8 with Pillow, in the
  DataLoader workers (``contrastkit.transforms.photo_views``); ``to_float`` converts a batch;
- on an accelerator, ``crop`` cuts each photo's V crops (in the workers, or on the device after
  GPU decoding): (3, H, W) uint8 -> V x (3, S_v, S_v) uint8, and ``__call__`` finishes a batch
  of crops there with ``contrastkit.transforms.batched`` (flip, rotation, colour jitter,
  grayscale, blur and solarisation).

The two cut the same crops from the same numbers (``photo_views.resized_crop``); their colour
steps differ slightly (the batched jitter clips after each step, Pillow's colour matrix once).

Randomness is the batched pipeline's: view v of a sample uses columns v * NUM_DRAWS to
(v + 1) * NUM_DRAWS - 1 of its row of ``u``; columns 0-3 (area, log aspect ratio, x, y) place
the crop box, as torchvision samples it but without rejection (the box is clamped to the image).

Letters used in shapes: B batch size, V views, U = V * NUM_DRAWS uniform draws per sample, H/W
an image's own size, S_v the side of view v.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastkit.transforms import photo_views
from contrastkit.transforms.batched import NUM_DRAWS, BatchedSimCLR
from contrastkit.transforms.recipes import CropSpec, ViewRecipe


def crop_box(spec: CropSpec, height: int, width: int, u: Tensor) -> tuple[int, int, int, int]:
    """Return ``(top, left, h, w)`` in pixels of one view's crop of an H x W image.

    Args:
        spec: the view (its ``scale`` and ``ratio``).
        height, width: the image's size.
        u: (4,) uniform draws: area, log aspect ratio, horizontal and vertical position.
    """
    area_draw, ratio_draw, x_draw, y_draw = (float(v) for v in u[:4])
    area = (spec.scale[0] + (spec.scale[1] - spec.scale[0]) * area_draw) * height * width
    low, high = math.log(spec.ratio[0]), math.log(spec.ratio[1])
    ratio = math.exp(low + (high - low) * ratio_draw)
    w = min(max(round(math.sqrt(area * ratio)), 1), width)
    h = min(max(round(math.sqrt(area / ratio)), 1), height)
    top = min(int(y_draw * (height - h + 1)), height - h)
    left = min(int(x_draw * (width - w + 1)), width - w)
    return top, left, h, w


class FullResolutionViews:
    """The V views of a recipe, cut from full-resolution images (see the module docstring).

    Args:
        recipe: the views to make (``contrastkit.transforms.recipes``).

    Attributes:
        num_draws: U = V * NUM_DRAWS, the uniform numbers one sample's views consume.
        sizes: S_v of each view.
    """

    def __init__(self, recipe: ViewRecipe) -> None:
        self.recipe = recipe
        self.transforms = [BatchedSimCLR(spec, cropped=True) for spec in recipe.views]
        self.num_draws = NUM_DRAWS * len(self.transforms)
        self.sizes = [spec.size for spec in recipe.views]

    def boxes(self, image: Tensor, u: Tensor) -> list[tuple[int, int, int, int]]:
        """Return each view's crop box ``(top, left, h, w)`` in image (3, H, W), from u (U,)."""
        if image.ndim != 3 or image.dtype != torch.uint8:
            shape = tuple(image.shape)
            raise ValueError(f"image must be (C, H, W) uint8, got {shape} {image.dtype}")
        if u.shape != (self.num_draws,):
            raise ValueError(f"u must be (U,) = ({self.num_draws},), got {tuple(u.shape)}")
        height, width = image.shape[-2:]
        return [
            crop_box(spec, height, width, u[view * NUM_DRAWS :])
            for view, spec in enumerate(self.recipe.views)
        ]

    def photo_views(self, image: Tensor, u: Tensor) -> list[Tensor]:
        """Make one photo's finished views on the CPU: (3, H, W) uint8 -> V x (3, S_v, S_v)
        uint8 (``contrastkit.transforms.photo_views``)."""
        return photo_views.photo_views(image, self.recipe.views, self.boxes(image, u), u)

    def to_float(self, views: list[Tensor]) -> list[Tensor]:
        """Return V batches of ``photo_views`` (B, 3, S_v, S_v) uint8 as the model's input."""
        specs = self.recipe.views
        return [photo_views.to_float(v, spec) for v, spec in zip(views, specs, strict=True)]

    def crop(self, image: Tensor, u: Tensor) -> list[Tensor]:
        """Cut the V crops of one image: (3, H, W) uint8 and u (U,) -> V x (3, S_v, S_v) uint8."""
        boxes = self.boxes(image, u)
        return [
            photo_views.resized_crop(image, box, spec.size)
            for box, spec in zip(boxes, self.recipe.views, strict=True)
        ]

    def __call__(self, crops: list[Tensor], u: Tensor) -> list[Tensor]:
        """Finish the views of a batch: V x (B, 3, S_v, S_v) uint8 and u (B, U) -> V float views.

        The views are float32 in [0, 1] (or standardised when the recipe has ``mean``/``std``),
        on the crops' device.
        """
        if len(crops) != len(self.transforms):
            raise ValueError(f"expected {len(self.transforms)} crops per sample, got {len(crops)}")
        u = u.to(device=crops[0].device, dtype=torch.float32)
        draws = u.split(NUM_DRAWS, dim=1)  # V tensors (B, NUM_DRAWS)
        return [
            transform(crop.to(torch.float32).div_(255.0), d)
            for transform, crop, d in zip(self.transforms, crops, draws, strict=True)
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.sizes)} views of sides {self.sizes})"


__all__ = ["FullResolutionViews", "crop_box"]

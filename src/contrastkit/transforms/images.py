"""The image recipes per sample, on (C, H, W) tensors: a ``ViewRecipe`` as torchvision v2 steps.

What each view does is data (``contrastkit.transforms.recipes``); this module only executes it.
``torchvision.transforms.v2`` draws every random number from torch's global RNG: the trainer
seeds it per sample, so views are reproducible and a resumed run sees the same views.
One-channel images get brightness and contrast jitter only (no saturation, hue or grayscale,
which need colour).

Normalisation: views stay in [0, 1] by default, because contrastkit embeds raw dataset samples
(in [0, 1]) for evaluation, attention maps and export, and training inputs must live in the same
space; the BatchNorm right after the first conv of the CNN/ResNet backbones absorbs any fixed
per-channel scale and shift anyway. Pass ``mean`` and ``std`` to standardise views, and then
standardise evaluation inputs the same way.

Letters used in shapes: C channels, H/W height/width, S the output side.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torchvision.transforms import v2

from contrastkit.transforms.options import image_recipe
from contrastkit.transforms.recipes import BLUR_SIGMA, SOLARIZE_THRESHOLD, CropSpec, ViewRecipe


def check_image(x: Tensor, min_side: int) -> None:
    """Raise ValueError unless x is a float (C, H, W) image, C in {1, 3}, H and W >= min_side."""
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[0] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be one float image (C, H, W) with C in {{1, 3}}, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a float image in [0, 1], got dtype {x.dtype}")
    if min(x.shape[1:]) < min_side:
        raise ValueError(
            f"image of size {x.shape[1]}x{x.shape[2]} is too small for crops of size "
            f"{min_side}x{min_side}; expected crop size <= the image's height and width"
        )


def image_view(spec: CropSpec) -> v2.Compose:
    """Build one view's transform: (C, H, W) in [0, 1] -> (C, S, S) with S = ``spec.size``.

    Steps whose probability is 0 are left out, except the colour jitter's random choice, which
    is always drawn (the global RNG then advances the same way whatever ``jitter_p`` is).
    """
    brightness, contrast, saturation, hue = spec.jitter
    if spec.channels == 1:
        color = v2.ColorJitter(brightness=brightness, contrast=contrast)
    else:
        color = v2.ColorJitter(brightness, contrast, saturation, hue)
    steps: list = [
        v2.RandomResizedCrop(spec.size, scale=spec.scale, ratio=spec.ratio, antialias=True),
        v2.RandomHorizontalFlip(spec.flip_p),
    ]
    if spec.rotate_p > 0:  # corners from outside the image are black (batched: the edge repeats)
        rotate = v2.RandomRotation(spec.degrees, interpolation=v2.InterpolationMode.BILINEAR)
        steps.append(v2.RandomApply([rotate], p=spec.rotate_p))
    steps.append(v2.RandomApply([color], p=spec.jitter_p))
    if spec.channels == 3 and spec.gray_p > 0:
        steps.append(v2.RandomGrayscale(spec.gray_p))
    if spec.blur_p > 0:
        blur = v2.GaussianBlur(spec.blur_kernel, sigma=BLUR_SIGMA)
        steps.append(v2.RandomApply([blur], p=spec.blur_p))
    if spec.solarize_p > 0:
        steps.append(v2.RandomSolarize(threshold=SOLARIZE_THRESHOLD, p=spec.solarize_p))
    if spec.mean is not None:
        steps.append(v2.Normalize(list(spec.mean), list(spec.std)))
    return v2.Compose(steps)


class ImageViews:
    """Map one image to the views of a recipe, one transform per view (picklable for workers).

    Args:
        recipe: the views to make (``contrastkit.transforms.recipes``).

    Attributes:
        transforms: one ``v2.Compose`` per view, each (C, H, W) -> (C, S_v, S_v).
        min_side: the largest crop side; smaller images raise ValueError.
    """

    def __init__(self, recipe: ViewRecipe) -> None:
        self.recipe = recipe
        self.transforms = [image_view(spec) for spec in recipe.views]
        self.min_side = recipe.min_side

    def __call__(self, x: Tensor) -> list[Tensor]:
        """Return the views of x: (C, H, W) in [0, 1] -> list of (C, S_v, S_v)."""
        check_image(x, self.min_side)
        return [t(x).contiguous() for t in self.transforms]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.transforms)} views, min_side={self.min_side})"


def image_view_fn(recipe: str, input_shape: Sequence[int], **options) -> ImageViews:
    """Build the per-sample views of an image recipe for images of ``input_shape`` (C, H, W).

    Args:
        recipe: "pair" (SimCLR), "asymmetric_pair" (BYOL) or "multicrop" (DINO).
        input_shape: (C, H, W) of the dataset's images.
        **options: see ``contrastkit.transforms.options.image_recipe``.

    Raises:
        ValueError: unknown recipe or option, a bad value, or crops larger than the images.
    """
    return ImageViews(image_recipe(recipe, input_shape, options))


__all__ = ["ImageViews", "check_image", "image_view", "image_view_fn"]

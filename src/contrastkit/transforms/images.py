"""The SimCLR augmentation recipe and BYOL's asymmetric variant, per sample, on (C, H, W) tensors.

SimCLR (Chen et al. 2020, https://arxiv.org/abs/2002.05709, appendix A): random resized crop
(scale 0.08-1, aspect 3/4-4/3) back to the image size, horizontal flip, colour jitter
(brightness, contrast, saturation 0.4, hue 0.1) with p = 0.8, grayscale with p = 0.2, Gaussian
blur (kernel ~10% of the side, sigma 0.1-2) with p = 0.5. BYOL (Grill et al. 2020,
https://arxiv.org/abs/2006.07733, table 6) uses blur p = 1.0 for view 1 and p = 0.1 plus
solarisation p = 0.2 for view 2.

Built from ``torchvision.transforms.v2``, which draws every random number from torch's global
RNG: the trainer seeds it per sample, so views are reproducible and a resumed run sees the same
views. One-channel images get brightness and contrast jitter only (no saturation, hue or
grayscale, which need colour).

Normalisation: views stay in [0, 1] by default, because contrastkit embeds raw dataset samples
(in [0, 1]) for evaluation, attention maps and export, and training inputs must live in the same
space; the BatchNorm right after the first conv of the CNN/ResNet backbones absorbs any fixed
per-channel scale and shift anyway. Pass ``mean`` and ``std`` to standardise views, and then
standardise evaluation inputs the same way.

Letters used in shapes: C channels, H/W height/width, S the output side.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.transforms import v2

IMAGE_RECIPES: tuple[str, ...] = ("pair", "asymmetric_pair", "multicrop")


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


def blur_kernel_size(side: int) -> int:
    """Return SimCLR's blur kernel: an odd size of about 10% of the image side, at least 3."""
    k = max(3, int(round(0.1 * side)))
    return k if k % 2 else k + 1


def image_view(
    size: int,
    *,
    channels: int = 3,
    scale: tuple[float, float] = (0.08, 1.0),
    flip_p: float = 0.5,
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
    jitter_p: float = 0.8,
    gray_p: float = 0.2,
    blur_p: float = 0.5,
    solarize_p: float = 0.0,
    rotate_p: float = 0.0,
    degrees: float = 180.0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> v2.Compose:
    """Build one SimCLR-style view transform: (C, H, W) in [0, 1] -> (C, S, S) with S = ``size``.

    Args:
        size: side S of the output crop.
        channels: C, 1 (grayscale: brightness/contrast jitter only) or 3.
        scale: (min, max) fraction of the image area kept by the random resized crop.
        flip_p: probability of a horizontal flip.
        jitter: (brightness, contrast, saturation, hue) strengths of the colour jitter.
        jitter_p: probability of applying the colour jitter.
        gray_p: probability of converting to grayscale (3 channels kept).
        blur_p: probability of a Gaussian blur (sigma uniform in 0.1-2).
        solarize_p: probability of solarising (x -> 1 - x where x >= 0.5).
        rotate_p: probability of rotating the crop by an angle uniform in [-degrees, degrees]
            (not in the SimCLR recipe; for data whose objects lie at any angle, as ``shapes``).
        degrees: the largest rotation angle.
        mean, std: per-channel normalisation applied last; both None keeps [0, 1].
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    lo, hi = (float(s) for s in scale)
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must be (min, max) with 0 < min <= max <= 1, got {scale}")
    for name, p in (("flip_p", flip_p), ("jitter_p", jitter_p), ("gray_p", gray_p)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    for name, p in (("blur_p", blur_p), ("solarize_p", solarize_p), ("rotate_p", rotate_p)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    brightness, contrast, saturation, hue = jitter
    if channels == 1:
        color = v2.ColorJitter(brightness=brightness, contrast=contrast)
    else:
        color = v2.ColorJitter(brightness, contrast, saturation, hue)
    steps: list = [
        v2.RandomResizedCrop(size, scale=(lo, hi), antialias=True),
        v2.RandomHorizontalFlip(flip_p),
    ]
    if rotate_p > 0:  # corners from outside the image are black (batched: the edge repeats)
        rotate = v2.RandomRotation(degrees, interpolation=v2.InterpolationMode.BILINEAR)
        steps.append(v2.RandomApply([rotate], p=rotate_p))
    steps += [
        v2.RandomApply([color], p=jitter_p),
    ]
    if channels == 3 and gray_p > 0:
        steps.append(v2.RandomGrayscale(gray_p))
    if blur_p > 0:
        blur = v2.GaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0))
        steps.append(v2.RandomApply([blur], p=blur_p))
    if solarize_p > 0:
        steps.append(v2.RandomSolarize(threshold=0.5, p=solarize_p))
    if (mean is None) != (std is None):
        raise ValueError(f"pass both mean and std or neither, got mean={mean}, std={std}")
    if mean is not None:
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ValueError(
                f"mean and std must hold {channels} values with std > 0, got {mean} and {std}"
            )
        steps.append(v2.Normalize(list(mean), list(std)))
    return v2.Compose(steps)


class ImageViews:
    """Map one image to its views, one transform per view (picklable for DataLoader workers).

    Args:
        transforms: one callable per view, each (C, H, W) -> (C, S_v, S_v).
        min_side: the largest crop side; smaller images raise ValueError.
    """

    def __init__(self, transforms: Sequence, min_side: int) -> None:
        self.transforms = list(transforms)
        self.min_side = int(min_side)

    def __call__(self, x: Tensor) -> list[Tensor]:
        """Return the views of x: (C, H, W) in [0, 1] -> list of (C, S_v, S_v)."""
        check_image(x, self.min_side)
        return [t(x).contiguous() for t in self.transforms]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.transforms)} views, min_side={self.min_side})"


def pair_views(
    size: int,
    *,
    channels: int = 3,
    asymmetric: bool = False,
    blur: bool = True,
    solarize: bool = True,
    **options,
) -> ImageViews:
    """Build SimCLR's two identical-recipe views, or BYOL's asymmetric pair.

    Args:
        size: side of both views.
        channels: C of the images.
        asymmetric: BYOL's recipe: view 1 blur p = 1.0; view 2 blur p = 0.1, solarize p = 0.2.
        blur: False turns the asymmetric pair's blur off (SimCLR left blur out on CIFAR: at
            32 px it erases the outlines; for the symmetric pair pass ``blur_p=0``).
        solarize: False turns the asymmetric pair's solarisation off (not in the paper: on
            ``shapes`` it kept BYOL from learning the shape, README).
        **options: passed to ``image_view`` (``scale``, ``jitter``, ``mean``, ``std``...).
    """
    if asymmetric:
        if {"blur_p", "solarize_p"} & set(options):
            raise ValueError("the asymmetric pair fixes blur_p and solarize_p per view (BYOL)")
        first = image_view(size, channels=channels, blur_p=1.0 * blur, solarize_p=0.0, **options)
        second = image_view(
            size, channels=channels, blur_p=0.1 * blur, solarize_p=0.2 * solarize, **options
        )
        return ImageViews([first, second], size)
    check_pair_options(blur, solarize)
    view = image_view(size, channels=channels, **options)
    return ImageViews([view, view], size)


def check_pair_options(blur: bool, solarize: bool) -> None:
    """Refuse ``blur=False`` / ``solarize=False`` for SimCLR's symmetric pair (no fixed views)."""
    if not blur:
        raise ValueError("blur=False is for the asymmetric and multi-crop recipes; pass blur_p=0")
    if not solarize:
        raise ValueError("solarize=False is for the asymmetric and multi-crop recipes")


def image_view_fn(recipe: str, input_shape: Sequence[int], **options) -> ImageViews:
    """Build the view function of an image recipe for images of ``input_shape`` (C, H, W).

    Args:
        recipe: "pair" (SimCLR), "asymmetric_pair" (BYOL) or "multicrop" (DINO).
        input_shape: (C, H, W) of the dataset's images.
        **options: ``size`` (crop side, default min(H, W)) and ``image_view`` options for the
            pairs; ``contrastkit.transforms.multicrop.multicrop_views`` options for multi-crop.

    Raises:
        ValueError: unknown recipe or option, or crops larger than the images.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    channels, height, width = (int(s) for s in input_shape)
    if recipe not in IMAGE_RECIPES:
        raise ValueError(f"unknown image recipe {recipe!r}; expected one of: {IMAGE_RECIPES}")
    try:
        if recipe == "multicrop":
            from contrastkit.transforms.multicrop import multicrop_views

            fn = multicrop_views(min(height, width), channels=channels, **options)
        else:
            size = int(options.pop("size", min(height, width)))
            asymmetric = recipe == "asymmetric_pair"
            fn = pair_views(size, channels=channels, asymmetric=asymmetric, **options)
    except TypeError as err:  # an unknown keyword
        raise ValueError(f"view options {sorted(options)} do not fit {recipe!r}: {err}") from err
    if fn.min_side > min(height, width):
        check_image(torch.zeros(channels, height, width), fn.min_side)  # raises, naming sizes
    return fn


__all__ = [
    "IMAGE_RECIPES",
    "ImageViews",
    "check_pair_options",
    "image_view",
    "image_view_fn",
    "pair_views",
]

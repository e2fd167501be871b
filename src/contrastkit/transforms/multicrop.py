"""DINO's multi-crop: 2 global crops and N local crops of one image, per sample.

DINO (Caron et al. 2021, https://arxiv.org/abs/2104.14294, and its official code): global crops
cover 40-100% of the image area (224 px), local crops 5-40% (96 px); all get flip, colour jitter
(0.4, 0.4, 0.2, 0.1) with p = 0.8 and grayscale with p = 0.2; global crop 1 is always blurred,
global crop 2 is blurred with p = 0.1 and solarised with p = 0.2, local crops are blurred with
p = 0.5. Only the global crops go through the teacher, so they come first in the list.

Sizes for small images: the global crop keeps the image side; the local crop is 3/7 of it (as
96/224), rounded to a multiple of the default ViT patch size ``max(2, side // 8)`` so that a
local crop is a whole patch grid (12 px for 32 px images, 24 px for 64 px, 4 px for 8 px).

Letters used in shapes: C channels, G/L global/local crop side.
"""

from __future__ import annotations

from contrastkit.transforms.images import ImageViews, image_view

NUM_GLOBAL = 2


def default_local_size(side: int) -> int:
    """Return the default local-crop side for images of side ``side`` (3/7, patch-aligned)."""
    patch = max(2, side // 8)
    return max(patch, round(side * 3 / 7 / patch) * patch)


def multicrop_views(
    side: int,
    *,
    channels: int = 3,
    n_local: int = 8,
    global_size: int | None = None,
    local_size: int | None = None,
    global_scale: tuple[float, float] = (0.4, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.4),
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1),
    rotate_p: float = 0.0,
    blur: bool = True,
    solarize: bool = True,
    mean=None,
    std=None,
) -> ImageViews:
    """Build DINO's views: [global 1, global 2, local 1..N], (C, G, G) then (C, L, L).

    Args:
        side: the images' side (min of H and W); sets the default sizes.
        channels: C of the images (1 or 3).
        n_local: number N of local crops (DINO's code defaults to 8); 0 gives 2 global crops.
        global_size: side G of the global crops; default ``side``.
        local_size: side L of the local crops; default ``default_local_size(side)``.
        global_scale, local_scale: (min, max) fraction of the image area each crop covers.
        jitter: colour-jitter strengths (brightness, contrast, saturation, hue).
        rotate_p: probability of a rotation of each crop (``image_view``; not in DINO).
        blur: False turns every crop's blur off (at 32 px blur erases the outlines).
        solarize: False turns global crop 2's solarisation off.
        mean, std: per-channel normalisation applied last; both None keeps [0, 1].

    Raises:
        ValueError: non-positive sizes, negative ``n_local``, or crops larger than the images.
    """
    global_size = int(global_size) if global_size is not None else int(side)
    local_size = int(local_size) if local_size is not None else default_local_size(side)
    if global_size <= 0 or local_size <= 0 or n_local < 0:
        raise ValueError(
            f"global_size and local_size must be > 0 and n_local >= 0, got global_size="
            f"{global_size}, local_size={local_size}, n_local={n_local}"
        )
    common = {
        "channels": channels,
        "jitter": jitter,
        "rotate_p": rotate_p,
        "mean": mean,
        "std": std,
    }
    first = image_view(global_size, scale=global_scale, blur_p=1.0 * blur, **common)
    second = image_view(
        global_size, scale=global_scale, blur_p=0.1 * blur, solarize_p=0.2 * solarize, **common
    )
    local = image_view(local_size, scale=local_scale, blur_p=0.5 * blur, **common)
    transforms = [first, second] + [local] * int(n_local)
    return ImageViews(transforms, max(global_size, local_size if n_local else 0))


__all__ = ["NUM_GLOBAL", "default_local_size", "multicrop_views"]

"""CLIP's views: one lightly cropped image and the token ids of one phrasing of its caption.

CLIP (Radford et al. 2021, section 2.5) uses "a random square crop from resized images" as its
only augmentation: colour jitter or grayscale would contradict captions that name colours. The
sample is ``x = (image (C, H, W), ids (K, L))`` as made by ``contrastkit.data.captions.
CaptionedImages``; one of the K phrasings is picked at random each time the image is seen. All
randomness comes from torch's global RNG, which the trainer seeds per sample.

Letters used in shapes: C channels, H/W height/width, S the output side, K phrasings, L context
length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.transforms import v2

from contrastkit.data.captions import check_token_choices
from contrastkit.transforms.images import check_image


class ImageTextViews:
    """Map ``(image, ids)`` to ``[square crop (C, S, S), ids[k] (L,)]`` with k random.

    Args:
        size: S, the side of the crop (the image size by default in ``image_text_views``).
        scale: (min, max) fraction of the image area the square crop keeps.
        flip_p: probability of a horizontal flip (0 as in CLIP: captions may say left/right).
    """

    def __init__(self, size: int, scale: Sequence[float] = (0.8, 1.0), flip_p: float = 0.0) -> None:
        lo, hi = (float(s) for s in scale)
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale must be (min, max) with 0 < min <= max <= 1, got {scale}")
        if not 0 <= flip_p <= 1:
            raise ValueError(f"flip_p must be a probability in [0, 1], got {flip_p}")
        self.size = int(size)
        self.crop = v2.Compose(
            [
                v2.RandomResizedCrop(self.size, scale=(lo, hi), ratio=(1.0, 1.0), antialias=True),
                v2.RandomHorizontalFlip(flip_p),
            ]
        )

    def __call__(self, x: tuple[Tensor, Tensor]) -> list[Tensor]:
        """Make the views of one sample: ``x = (image (C, H, W), ids (K, L))``."""
        if not isinstance(x, tuple | list) or len(x) != 2:
            raise ValueError(
                f"an image_text sample must be (image, caption ids), got {type(x).__name__}; "
                "wrap the dataset in contrastkit.data.captions.CaptionedImages"
            )
        image, ids = x
        check_image(image, 1)
        check_token_choices(ids)
        k = int(torch.randint(ids.shape[0], ()))
        return [self.crop(image), ids[k]]


def image_text_views(input_shape: Sequence[int], **options) -> ImageTextViews:
    """Build CLIP's view function for images of ``input_shape`` (C, H, W); crops keep H."""
    if len(input_shape) != 3:
        raise ValueError(f"image_text needs images (C, H, W), got input shape {input_shape}")
    options.setdefault("size", int(input_shape[1]))
    try:
        return ImageTextViews(**options)
    except TypeError as err:
        raise ValueError(
            f"view options {sorted(options)} do not fit the 'image_text' recipe: {err}"
        ) from err


__all__ = ["ImageTextViews", "image_text_views"]

"""CLIP's views: one lightly cropped image and the token ids of one phrasing of its caption.

The recipe (a random square crop, no colour change) is ``recipes.ImageTextRecipe``. The
sample is ``x = (image (C, H, W), ids (K, L))`` as made by ``contrastkit.data.captions.
CaptionedImages``; one of the K phrasings is picked at random each time the image is seen. All
randomness comes from torch's global RNG, which the trainer seeds per sample.

Letters used in shapes: C channels, H/W height/width, S the output side, K phrasings, L context
length.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.transforms import v2

from contrastkit.data.captions import check_token_choices
from contrastkit.transforms.images import check_image
from contrastkit.transforms.recipes import ImageTextRecipe


class ImageTextViews:
    """Map ``(image, ids)`` to ``[square crop (C, S, S), ids[k] (L,)]`` with k random.

    Args:
        recipe: the crop (``contrastkit.transforms.recipes.ImageTextRecipe``).
    """

    def __init__(self, recipe: ImageTextRecipe) -> None:
        self.recipe = recipe
        self.size = recipe.size
        crop = v2.RandomResizedCrop(
            recipe.size, scale=recipe.scale, ratio=(1.0, 1.0), antialias=True
        )
        self.crop = v2.Compose([crop, v2.RandomHorizontalFlip(recipe.flip_p)])

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


__all__ = ["ImageTextViews"]

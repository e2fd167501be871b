"""Views: ``build_view_fn(recipe, dataset)`` returns the function that maps one sample to its views.

A method names the views it needs (``Method.view_recipe``); the dataset decides how its samples
are augmented. The returned callable draws its randomness from torch's global RNG, which the
trainer seeds per (seed, epoch, sample index), so a resumed run sees exactly the same views.

The house, in reading order:
    recipes.py     every recipe as frozen dataclasses, with the papers' defaults (the data).
    options.py     ``view_recipe``: the user's options -> that data, checked once.
    images.py      image recipes per sample (torchvision v2).
    batched.py     image recipes for a whole batch on the training device (the trainer's default:
                   on a CPU they cost a tenth of the per-sample pipeline, benchmarks/throughput.py),
                   with each sample's random choices given as uniform numbers drawn per (seed,
                   epoch, sample index).
    full_resolution.py the same recipes on data sets that serve full-resolution photos
                   (``full_resolution``): crops cut from the photo in the loader, the rest
                   batched.
    small.py       noise views of points and the digits recipe, per sample.
    image_text.py  CLIP's crop and caption choice, per sample.

Recipes:
    "pair": two views made the same way (SimCLR, MoCo, Barlow Twins, VICReg, SimSiam).
    "asymmetric_pair": two views from two different recipes (BYOL).
    "multicrop": 2 global crops + N local crops (DINO).
    "image_text": an image view and its caption's token ids (CLIP).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from contrastkit.transforms.batched import BatchedViews
from contrastkit.transforms.full_resolution import FullResolutionViews
from contrastkit.transforms.image_text import ImageTextViews
from contrastkit.transforms.images import ImageViews
from contrastkit.transforms.options import is_small_images, view_recipe
from contrastkit.transforms.recipes import (
    IMAGE_RECIPES,
    SMALL_IMAGE_SIDE,
    VIEW_RECIPES,
    ImageTextRecipe,
    NoiseRecipe,
    SmallImageRecipe,
    ViewRecipe,
)
from contrastkit.transforms.small import NoiseViews, SmallImageViews

ViewFn = Callable[[Tensor], list[Tensor]]

# the per-sample backend of each kind of recipe data
_PER_SAMPLE: dict[type, Callable] = {
    ViewRecipe: ImageViews,
    NoiseRecipe: NoiseViews,
    SmallImageRecipe: SmallImageViews,
    ImageTextRecipe: ImageTextViews,
}


def has_batched_views(recipe: str, dataset) -> bool:
    """Return whether ``recipe`` on ``dataset`` is an image recipe with a batched pipeline.

    True for SimCLR/BYOL pairs on images above 16 px and for multi-crop on any images; the
    small-image (digits) pairs, the toy points and CLIP's image-text views are per sample only.
    """
    kind = getattr(dataset, "kind", None)
    shape = tuple(getattr(dataset, "input_shape", ()))
    if kind != "images" or recipe not in IMAGE_RECIPES or len(shape) != 3:
        return False
    return recipe == "multicrop" or not is_small_images(kind, shape)


def build_batched_view_fn(recipe: str, dataset, **options) -> BatchedViews | FullResolutionViews:
    """Return the batched views of an image recipe: (B, C, H, W) and draws (B, U) -> V views.

    On a data set of full-resolution photos (``dataset.full_resolution``, e.g. ``folder:PATH``)
    they are ``FullResolutionViews``: crops cut from each photo, then finished per batch.

    Args:
        recipe: "pair", "asymmetric_pair" or "multicrop".
        dataset: images (``kind`` "images", ``input_shape`` (C, H, W)); see
            ``has_batched_views``.
        **options: the same options as the per-sample recipe.

    Raises:
        ValueError: no batched pipeline for this recipe and data, or bad options.
    """
    if not has_batched_views(recipe, dataset):
        name = getattr(dataset, "name", type(dataset).__name__)
        raise ValueError(
            f"no batched views for recipe {recipe!r} on dataset {name!r}: they exist for the "
            f"image recipes {', '.join(IMAGE_RECIPES)} (pairs on images larger than "
            f"{SMALL_IMAGE_SIDE} px); use the per-sample pipeline"
        )
    if getattr(dataset, "full_resolution", False):
        return FullResolutionViews(view_recipe(recipe, dataset, options))
    return BatchedViews(view_recipe(recipe, dataset, options))


def build_view_fn(recipe: str, dataset, **options) -> ViewFn:
    """Return the callable that maps one raw sample x of ``dataset`` to its list of views.

    Args:
        recipe: one of ``VIEW_RECIPES`` (the method's ``view_recipe``).
        dataset: a dataset following the ``contrastkit.data`` contract (``kind``, ``input_shape``).
        **options: recipe options, e.g. ``std`` for points or ``degrees`` for small images.

    Raises:
        ValueError: unknown recipe, a recipe the data does not support, or unknown options.
    """
    data = view_recipe(recipe, dataset, options)
    return _PER_SAMPLE[type(data)](data)


__all__ = [
    "VIEW_RECIPES",
    "BatchedViews",
    "FullResolutionViews",
    "NoiseViews",
    "SmallImageViews",
    "ViewFn",
    "build_batched_view_fn",
    "build_view_fn",
    "has_batched_views",
]

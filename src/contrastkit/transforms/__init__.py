"""Views: ``build_view_fn(recipe, dataset)`` returns the function that maps one sample to its views.

A method names the views it needs (``Method.view_recipe``); the dataset decides how its samples
are augmented. The returned callable draws its randomness from torch's global RNG, which the
trainer seeds per (seed, epoch, sample index), so a resumed run sees exactly the same views.

The image recipes also exist batched (``build_batched_view_fn``, ``transforms/batched.py``):
one call per view for a whole batch on the training device, with each sample's random choices
given as uniform numbers drawn per (seed, epoch, sample index). The trainer uses them where they
exist: on a CPU they cost a tenth of the per-sample pipeline (``benchmarks/throughput.py``).

Recipes:
    "pair": two views made the same way (SimCLR, MoCo, Barlow Twins, VICReg, SimSiam).
    "asymmetric_pair": two views from two different recipes (BYOL).
    "multicrop": 2 global crops + N local crops (DINO).
    "image_text": an image view and its caption's token ids (CLIP).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from contrastkit.transforms.batched import BatchedViews, batched_view_fn
from contrastkit.transforms.image_text import image_text_views
from contrastkit.transforms.images import IMAGE_RECIPES, image_view_fn
from contrastkit.transforms.small import NoiseViews, SmallImageViews

VIEW_RECIPES: tuple[str, ...] = ("pair", "asymmetric_pair", "multicrop", "image_text")

ViewFn = Callable[[Tensor], list[Tensor]]

# images at most this many pixels on a side get the small-image (digits) recipe
SMALL_IMAGE_SIDE = 16


def _construct(cls: type, recipe: str, options: dict) -> ViewFn:
    try:
        return cls(**options)
    except TypeError as err:  # unknown keyword: name the recipe and what it accepts
        raise ValueError(
            f"view options {sorted(options)} do not fit the {recipe!r} recipe "
            f"({cls.__name__}): {err}"
        ) from err


def _is_small_images(kind, shape: tuple) -> bool:
    return kind == "images" and len(shape) == 3 and max(shape[1:]) <= SMALL_IMAGE_SIDE


def has_batched_views(recipe: str, dataset) -> bool:
    """Return whether ``recipe`` on ``dataset`` is an image recipe with a batched pipeline.

    True for SimCLR/BYOL pairs on images above 16 px and for multi-crop on any images; the
    small-image (digits) pairs, the toy points and CLIP's image-text views are per sample only.
    """
    kind = getattr(dataset, "kind", None)
    shape = tuple(getattr(dataset, "input_shape", ()))
    if kind != "images" or recipe not in IMAGE_RECIPES or len(shape) != 3:
        return False
    return recipe == "multicrop" or not _is_small_images(kind, shape)


def build_batched_view_fn(recipe: str, dataset, **options) -> BatchedViews:
    """Return the batched views of an image recipe: (B, C, H, W) and draws (B, U) -> V views.

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
    return batched_view_fn(recipe, tuple(dataset.input_shape), **options)


def build_view_fn(recipe: str, dataset, **options) -> ViewFn:
    """Return the callable that maps one raw sample x of ``dataset`` to its list of views.

    Args:
        recipe: one of ``VIEW_RECIPES`` (the method's ``view_recipe``).
        dataset: a dataset following the ``contrastkit.data`` contract (``kind``, ``input_shape``).
        **options: recipe options, e.g. ``std`` for points or ``degrees`` for small images.

    Raises:
        ValueError: unknown recipe, a recipe the data does not support, or unknown options.
    """
    if recipe not in VIEW_RECIPES:
        raise ValueError(
            f"unknown view recipe {recipe!r}; expected one of: {', '.join(VIEW_RECIPES)}"
        )
    kind = getattr(dataset, "kind", None)
    shape = tuple(getattr(dataset, "input_shape", ()))
    name = getattr(dataset, "name", type(dataset).__name__)
    pairs = ("pair", "asymmetric_pair")  # the small recipes have no asymmetric variant
    if kind == "points" and recipe in pairs:
        return _construct(NoiseViews, recipe, options)
    if _is_small_images(kind, shape) and recipe in pairs:
        return _construct(SmallImageViews, recipe, options)
    if kind == "images" and recipe in IMAGE_RECIPES:  # SimCLR / BYOL pairs, DINO multi-crop
        return image_view_fn(recipe, shape, **options)
    if kind == "images" and recipe == "image_text":  # CLIP: x = (image, caption token ids)
        return image_text_views(shape, **options)
    raise ValueError(
        f"view recipe {recipe!r} is not available for dataset {name!r} "
        f"(kind {kind!r}, input shape {shape})"
    )


__all__ = [
    "VIEW_RECIPES",
    "BatchedViews",
    "NoiseViews",
    "SmallImageViews",
    "ViewFn",
    "build_batched_view_fn",
    "build_view_fn",
    "has_batched_views",
]

"""The one check of view options: a recipe name, the data and the user's options -> recipe data.

``view_recipe`` picks the recipe the data supports (noise views for points, the digits recipe
for small images, the papers' recipes for images), refuses unknown option names, listing the
accepted ones, and builds the frozen dataclasses of ``contrastkit.transforms.recipes``, which
check the values. Both view backends start from what it returns, so an option is read and
checked in one place whichever pipeline runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from contrastkit.transforms.recipes import (
    IMAGE_RECIPES,
    PAIR_OPTIONS,
    PAIRS,
    SMALL_IMAGE_SIDE,
    VIEW_RECIPES,
    ImageTextRecipe,
    MultiCrop,
    NoiseRecipe,
    SmallImageRecipe,
    ViewRecipe,
    pair_recipe,
)

Recipe = ViewRecipe | NoiseRecipe | SmallImageRecipe | ImageTextRecipe


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def check_option_names(recipe: str, options: Mapping[str, Any], accepted: Sequence[str]) -> None:
    """Raise ValueError naming the options of ``recipe`` that are not in ``accepted``."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        given = ", ".join(f"{name}={options[name]!r}" for name in unknown)
        raise ValueError(
            f"view options {unknown} do not fit {recipe!r} ({given}); it accepts: "
            f"{', '.join(sorted(accepted))}"
        )


def image_recipe(recipe: str, input_shape: Sequence[int], options: Mapping[str, Any]) -> ViewRecipe:
    """Build the data of an image recipe for images of ``input_shape`` (C, H, W).

    Args:
        recipe: "pair" (SimCLR), "asymmetric_pair" (BYOL) or "multicrop" (DINO).
        input_shape: (C, H, W) of the images.
        options: ``size`` (crop side, default min(H, W)), ``blur``, ``solarize`` and the
            ``CropSpec`` fields for the pairs; the ``MultiCrop`` fields for multi-crop.

    Raises:
        ValueError: unknown recipe or option, a bad value, or crops larger than the images.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    channels, height, width = (int(s) for s in input_shape)
    side = min(height, width)
    if recipe == "multicrop":
        check_option_names(recipe, options, _field_names(MultiCrop))
        views = MultiCrop(**options).recipe(side, channels)
    elif recipe in PAIRS:
        check_option_names(recipe, options, PAIR_OPTIONS)
        view = dict(options)
        size = int(view.pop("size", side))
        views = pair_recipe(recipe, size, channels, **view)
    else:
        raise ValueError(f"unknown image recipe {recipe!r}; expected one of: {IMAGE_RECIPES}")
    if views.min_side > side:
        raise ValueError(
            f"image of size {height}x{width} is too small for crops of size "
            f"{views.min_side}x{views.min_side}; expected crop size <= the image's height and width"
        )
    return views


def is_small_images(kind: str | None, shape: tuple) -> bool:
    """Return whether the data are images at most ``SMALL_IMAGE_SIDE`` px on a side."""
    return kind == "images" and len(shape) == 3 and max(shape[1:]) <= SMALL_IMAGE_SIDE


def view_recipe(recipe: str, dataset, options: Mapping[str, Any]) -> Recipe:
    """Build the recipe data for ``recipe`` on ``dataset`` from the user's view options.

    Args:
        recipe: one of ``VIEW_RECIPES`` (the method's ``view_recipe``).
        dataset: a dataset following the ``contrastkit.data`` contract (``kind``, ``input_shape``).
        options: the user's view options (``TrainConfig.view_options``).

    Raises:
        ValueError: unknown recipe, a recipe the data does not support, an unknown option (the
            accepted ones are listed) or a bad value (named, with what is accepted).
    """
    if recipe not in VIEW_RECIPES:
        raise ValueError(
            f"unknown view recipe {recipe!r}; expected one of: {', '.join(VIEW_RECIPES)}"
        )
    kind = getattr(dataset, "kind", None)
    shape = tuple(getattr(dataset, "input_shape", ()))
    small = {"points": NoiseRecipe, "images": SmallImageRecipe}  # no asymmetric variants
    if recipe in PAIRS and (kind == "points" or is_small_images(kind, shape)):
        cls = small[kind]
        check_option_names(recipe, options, _field_names(cls))
        return cls(**options)
    if kind == "images" and recipe in IMAGE_RECIPES:  # SimCLR / BYOL pairs, DINO multi-crop
        return image_recipe(recipe, shape, options)
    if kind == "images" and recipe == "image_text":  # CLIP: x = (image, caption token ids)
        if len(shape) != 3:
            raise ValueError(f"image_text needs images (C, H, W), got input shape {shape}")
        check_option_names(recipe, options, _field_names(ImageTextRecipe))
        return ImageTextRecipe(**{"size": shape[1], **options})
    name = getattr(dataset, "name", type(dataset).__name__)
    raise ValueError(
        f"view recipe {recipe!r} is not available for dataset {name!r} "
        f"(kind {kind!r}, input shape {shape})"
    )

"""The recipes as data: the papers' values, written once and read by both backends."""

import dataclasses
import pickle

import pytest

from contrastkit.transforms.batched import batched_view_fn
from contrastkit.transforms.images import image_view_fn
from contrastkit.transforms.options import image_recipe
from contrastkit.transforms.recipes import (
    BYOL_VIEWS,
    CropSpec,
    ImageTextRecipe,
    MultiCrop,
    NoiseRecipe,
    SmallImageRecipe,
)

SHAPES_OPTIONS = {"scale": [0.3, 1.0], "jitter": [0.4, 0.4, 0.4, 0.5], "rotate_p": 1.0}


def test_the_defaults_are_simclrs():
    spec = CropSpec(32)
    assert (spec.scale, spec.ratio, spec.flip_p) == ((0.08, 1.0), (3 / 4, 4 / 3), 0.5)
    assert (spec.jitter, spec.jitter_p, spec.gray_p) == ((0.4, 0.4, 0.4, 0.1), 0.8, 0.2)
    assert (spec.blur_p, spec.solarize_p, spec.rotate_p) == (0.5, 0.0, 0.0)


def test_toml_lists_become_tuples_and_specs_are_frozen_and_picklable():
    spec = CropSpec(16, **SHAPES_OPTIONS, mean=[0.5] * 3, std=[0.2] * 3)
    assert spec.scale == (0.3, 1.0) and spec.jitter == (0.4, 0.4, 0.4, 0.5)
    assert spec.mean == (0.5,) * 3 and hash(spec) == hash(
        CropSpec(16, **SHAPES_OPTIONS, mean=[0.5] * 3, std=[0.2] * 3)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.size = 8
    assert pickle.loads(pickle.dumps(spec)) == spec


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"channels": 2}, "channels must be 1 or 3, got 2"),
        ({"size": 0}, "size must be a positive crop side, got 0"),
        ({"scale": (0.5, 2.0)}, r"scale must be \(min, max\) with 0 < min <= max <= 1"),
        ({"ratio": (2.0, 1.0)}, r"ratio must be \(min, max\) with 0 < min <= max, got"),
        ({"gray_p": 1.5}, r"gray_p must be a probability in \[0, 1\], got 1.5"),
        ({"jitter": (0.4, 0.4)}, "jitter must be 4 strengths >= 0"),
        ({"mean": (0.5,) * 3}, "pass both mean and std or neither"),
        ({"mean": (0.5,), "std": (0.2,)}, "mean and std must hold 3 values"),
    ],
)
def test_bad_values_name_the_field_the_value_and_what_is_accepted(options, message):
    with pytest.raises(ValueError, match=message):
        CropSpec(**{"size": 16, **options})


def test_byol_and_dino_take_their_fixed_per_view_values_from_one_table():
    byol = image_recipe("asymmetric_pair", (3, 32, 32), {})
    assert [(v.blur_p, v.solarize_p) for v in byol.views] == list(BYOL_VIEWS)
    dino = image_recipe("multicrop", (3, 32, 32), {"n_local": 2})
    assert [(v.blur_p, v.solarize_p) for v in dino.views[:2]] == list(BYOL_VIEWS)
    assert [(v.size, v.scale, v.blur_p) for v in dino.views[2:]] == [(12, (0.05, 0.4), 0.5)] * 2
    assert all(v.jitter == MultiCrop().jitter for v in dino.views)


@pytest.mark.parametrize(
    ("recipe", "options"),
    [
        ("pair", {}),
        ("pair", {**SHAPES_OPTIONS, "blur_p": 0.0, "size": 24}),
        ("asymmetric_pair", {**SHAPES_OPTIONS, "blur": False, "solarize": False}),
        ("multicrop", {"n_local": 4, "jitter": [0.4, 0.4, 0.2, 0.5], "blur": False}),
    ],
)
def test_both_backends_run_the_same_recipe_data(recipe, options):
    per_sample = image_view_fn(recipe, (3, 32, 32), **options)
    batched = batched_view_fn(recipe, (3, 32, 32), **options)
    assert per_sample.recipe == batched.recipe == image_recipe(recipe, (3, 32, 32), options)
    assert per_sample.min_side == batched.min_side


def test_the_per_sample_pipeline_takes_the_crop_ratio_too():
    fn = image_view_fn("pair", (3, 32, 32), ratio=(1.0, 1.0))
    assert fn.transforms[0].transforms[0].ratio == (1.0, 1.0)


def test_the_small_recipes_check_their_values():
    assert NoiseRecipe().std == 0.3 and SmallImageRecipe().num_views == 2
    with pytest.raises(ValueError, match="std must be >= 0"):
        NoiseRecipe(std=-1)
    with pytest.raises(ValueError, match="^std must be >= 0 and finite, got std=nan$"):
        NoiseRecipe(std=float("nan"))  # NaN noise trains to a NaN loss: refused before training
    with pytest.raises(ValueError, match="noise_std must be >= 0 and finite.*noise_std=inf"):
        SmallImageRecipe(noise_std=float("inf"))
    with pytest.raises(ValueError, match=r"erase_p must be a probability in \[0, 1\], got 2"):
        SmallImageRecipe(erase_p=2)
    with pytest.raises(ValueError, match="degrees, translate and noise_std must be >= 0"):
        SmallImageRecipe(translate=-0.1)
    with pytest.raises(ValueError, match=r"flip_p must be a probability"):
        ImageTextRecipe(24, flip_p=-1)

"""The one check of view options: unknown names list the accepted ones, on both pipelines."""

import pytest

from contrastkit.transforms import build_batched_view_fn, build_view_fn
from contrastkit.transforms.options import view_recipe
from contrastkit.transforms.recipes import ImageTextRecipe, NoiseRecipe, SmallImageRecipe


class Data:
    name = "fake"

    def __init__(self, kind, shape):
        self.kind, self.input_shape = kind, shape


IMAGES = Data("images", (3, 32, 32))


@pytest.mark.parametrize("build", [build_view_fn, build_batched_view_fn])
def test_unknown_options_are_named_with_their_value_and_the_accepted_ones(build):
    with pytest.raises(ValueError, match=r"view options \['sharpness'\] do not fit 'pair'") as err:
        build("pair", IMAGES, sharpness=3, scale=(0.5, 1.0))
    assert "sharpness=3" in str(err.value) and "blur_p, degrees, flip_p" in str(err.value)
    with pytest.raises(ValueError, match=r"\['degrees'\] do not fit 'multicrop'.*n_local"):
        build("multicrop", IMAGES, degrees=30)


def test_the_data_picks_the_recipe():
    assert isinstance(view_recipe("pair", Data("points", (2,)), {}), NoiseRecipe)
    assert isinstance(view_recipe("pair", Data("images", (1, 8, 8)), {}), SmallImageRecipe)
    assert view_recipe("multicrop", Data("images", (1, 8, 8)), {}).views[0].size == 8
    clip = view_recipe("image_text", Data("images", (3, 24, 20)), {})
    assert clip == ImageTextRecipe(24)
    with pytest.raises(ValueError, match=r"\['blur_p'\] do not fit 'pair'.*num_views"):
        view_recipe("pair", Data("images", (1, 8, 8)), {"blur_p": 0.0})


@pytest.mark.parametrize(
    ("recipe", "options", "message"),
    [
        ("pair", {"blur": "no"}, "blur must be true or false, got 'no'"),
        ("multicrop", {"solarize": 2}, "solarize must be true or false, got 2"),
        ("multicrop", {"local_scale": (0.0, 0.4)}, r"local_scale must be \(min, max\)"),
        ("pair", {"channels": 1}, r"\['channels'\] do not fit 'pair'"),
        ("asymmetric_pair", {"solarize_p": 0.1}, "fixes blur_p and solarize_p"),
    ],
)
def test_recipe_level_checks(recipe, options, message):
    with pytest.raises(ValueError, match=message):
        view_recipe(recipe, IMAGES, options)

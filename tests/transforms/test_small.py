import pytest
import torch

from contrastkit.data import build_dataset
from contrastkit.transforms import build_view_fn
from contrastkit.transforms.recipes import NoiseRecipe, SmallImageRecipe
from contrastkit.transforms.small import NoiseViews, SmallImageViews

# no rotation, shift, zoom, noise or erasing
STILL = {"degrees": 0, "translate": 0, "scale": (1, 1), "noise_std": 0, "erase_p": 0}


def test_noise_views_have_the_requested_std():
    torch.manual_seed(0)
    x = torch.zeros(20000, 2)
    v1, v2 = NoiseViews(NoiseRecipe(std=0.3))(x)
    assert abs(float(v1.std()) - 0.3) < 0.01 and abs(float(v2.std()) - 0.3) < 0.01
    assert not torch.equal(v1, v2)


def test_views_are_a_function_of_the_global_rng():
    x = build_dataset("digits")[0][0]
    fn = SmallImageViews()  # the digits defaults
    torch.manual_seed(7)
    a = fn(x)
    torch.manual_seed(7)
    b = fn(x)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[0], a[1])


def test_identity_settings_return_the_image():
    x = torch.rand(1, 8, 8)
    fn = SmallImageViews(SmallImageRecipe(**STILL))
    assert all(torch.allclose(v, x, atol=1e-6) for v in fn(x))


def test_shift_moves_the_image_by_the_drawn_amount():
    x = torch.zeros(1, 8, 8)
    x[0, 3:5, 3:5] = 1.0
    fn = SmallImageViews(SmallImageRecipe(**{**STILL, "translate": 0.25}))
    torch.manual_seed(0)
    view = fn(x)[0]
    assert view.shape == (1, 8, 8) and view.min() >= 0 and view.max() <= 1
    # mass is kept (the square stays inside) but its centre moves by at most 2 pixels
    assert abs(float(view.sum()) - 4.0) < 1e-4
    ys, xs = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    centre = (float((view[0] * ys).sum() / 4), float((view[0] * xs).sum() / 4))
    assert all(abs(c - 3.5) <= 2.0 + 1e-5 for c in centre)


def test_erasing_zeroes_a_rectangle():
    x = torch.ones(1, 8, 8)
    fn = SmallImageViews(SmallImageRecipe(**{**STILL, "erase_p": 1.0, "erase_scale": (0.1, 0.1)}))
    torch.manual_seed(0)
    view = fn(x)[0]
    erased = int((view == 0).sum())
    assert 4 <= erased <= 9  # 10 % of 64 pixels, rounded to a rectangle


def test_build_view_fn_dispatch_and_errors():
    assert isinstance(build_view_fn("pair", build_dataset("toy")), NoiseViews)
    assert isinstance(build_view_fn("pair", build_dataset("digits")), SmallImageViews)
    assert (
        len(build_view_fn("pair", build_dataset("digits"), num_views=3)(torch.rand(1, 8, 8))) == 3
    )
    with pytest.raises(ValueError, match="unknown view recipe"):
        build_view_fn("triple", build_dataset("toy"))
    with pytest.raises(ValueError, match="not available"):
        build_view_fn("multicrop", build_dataset("toy"))
    with pytest.raises(ValueError, match="do not fit"):
        build_view_fn("pair", build_dataset("toy"), sigma=1.0)
    with pytest.raises(ValueError, match="scale"):
        SmallImageRecipe(scale=(1.2, 0.9))

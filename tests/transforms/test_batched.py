import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from contrastkit.transforms.batched import (
    NUM_DRAWS,
    BatchedSimCLR,
    BatchedViews,
    _rotate_hue,
    batched_view_fn,
)
from contrastkit.transforms.recipes import CropSpec, ViewRecipe

OFF = {"flip_p": 0.0, "jitter_p": 0.0, "gray_p": 0.0, "blur_p": 0.0}


def view(size: int, **options) -> BatchedSimCLR:
    """One batched view of side ``size`` with the SimCLR defaults but ``options``."""
    return BatchedSimCLR(CropSpec(size, **options))


def _batch(b=6, c=3, s=16):
    return torch.rand(b, c, s, s, generator=torch.Generator().manual_seed(0))


def test_identity_settings_return_the_input():
    x = _batch()
    out = view(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), **OFF)(x)
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)


def test_flip_always_mirrors():
    x = _batch()
    out = view(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), **{**OFF, "flip_p": 1.0})(x)
    torch.testing.assert_close(out, x.flip(-1), atol=1e-6, rtol=0)


def test_full_recipe_shapes_range_and_per_sample_randomness():
    x = _batch(b=8, s=32)
    recipe = ViewRecipe("pair", (CropSpec(24), CropSpec(24, blur_p=0.1, solarize_p=0.2)))
    fn = BatchedViews(recipe)
    torch.manual_seed(0)
    v1, v2 = fn(x)
    assert v1.shape == v2.shape == (8, 3, 24, 24)
    assert v1.min() >= 0 and v1.max() <= 1 + 1e-6
    same = x[:1].expand(8, -1, -1, -1)  # one image 8 times: views still differ per sample
    torch.manual_seed(0)
    views = view(24)(same)
    assert not torch.allclose(views[0], views[1])
    torch.manual_seed(0)
    torch.testing.assert_close(view(24)(same), views, rtol=0, atol=0)


def test_blur_keeps_constant_images_and_grayscale_equalises_channels():
    flat = torch.full((3, 3, 16, 16), 0.3)
    blurred = view(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), **{**OFF, "blur_p": 1.0})(flat)
    torch.testing.assert_close(blurred, flat)
    gray = view(16, **{**OFF, "gray_p": 1.0})(_batch())
    torch.testing.assert_close(gray[:, 0], gray[:, 2])


def test_brightness_and_contrast_follow_torchvision():
    x = _batch(b=1)
    plain = {"scale": (1.0, 1.0), "ratio": (1.0, 1.0), **OFF, "jitter_p": 1.0}
    t = view(16, jitter=(0.4, 0.0, 0.0, 0.0), **plain)
    u = torch.tensor([[0.75, 0.5, 0.5, 0.5, 0.0]])  # brightness factor 1 + 0.4 * 0.5 = 1.2
    out = t._jitter(x, u, torch.tensor([True]))
    torch.testing.assert_close(out, TF.adjust_brightness(x, 1.2), atol=1e-6, rtol=0)
    t = view(16, jitter=(0.0, 0.4, 0.0, 0.0), **plain)
    out = t._jitter(x, u[:, [1, 0, 2, 3, 4]], torch.tensor([True]))
    torch.testing.assert_close(out, TF.adjust_contrast(x, 1.2), atol=1e-5, rtol=0)


def test_hue_rotation_by_zero_is_identity_and_keeps_luma():
    x = _batch(b=2)
    torch.testing.assert_close(_rotate_hue(x, torch.zeros(2)), x, atol=1e-5, rtol=0)
    turned = _rotate_hue(x, torch.tensor([0.5, -0.5]))
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    torch.testing.assert_close((turned * luma).sum(1), (x * luma).sum(1), atol=1e-5, rtol=0)


def test_grayscale_input_and_bad_shapes():
    out = view(8, channels=1)(torch.rand(4, 1, 8, 8))
    assert out.shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\) with H, W >= 32"):
        view(32)(torch.rand(2, 3, 16, 16))


def test_batched_view_fn_recipes():
    x = torch.rand(3, 3, 32, 32)
    torch.manual_seed(0)
    assert [v.shape[-1] for v in batched_view_fn("pair", (3, 32, 32))(x)] == [32, 32]
    byol = batched_view_fn("asymmetric_pair", (3, 32, 32), size=24)
    assert [t.spec.blur_p for t in byol.transforms] == [1.0, 0.1]
    sides = [v.shape[-1] for v in batched_view_fn("multicrop", (3, 32, 32), n_local=3)(x)]
    assert sides == [32, 32, 12, 12, 12]
    with pytest.raises(ValueError, match="do not fit"):
        batched_view_fn("pair", (3, 32, 32), n_local=2)


def test_mean_and_std_standardise_last():
    x = _batch()
    t = view(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), mean=(0.5,) * 3, std=(0.25,) * 3, **OFF)
    torch.testing.assert_close(t(x), (x - 0.5) / 0.25, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="pass both mean and std or neither"):
        view(16, mean=(0.5,) * 3)


def test_the_batched_recipes_take_the_per_sample_options():
    fn = batched_view_fn(
        "pair", (3, 32, 32), scale=(0.3, 1.0), jitter=(0.4, 0.4, 0.4, 0.0), blur_p=0
    )
    assert [t.spec.scale for t in fn.transforms] == [(0.3, 1.0)] * 2
    assert all(t.spec.blur_p == 0 and t.spec.jitter[3] == 0 for t in fn.transforms)
    dino = batched_view_fn("multicrop", (3, 32, 32), n_local=4, local_scale=(0.1, 0.3))
    assert [t.spec.scale for t in dino.transforms] == [(0.4, 1.0)] * 2 + [(0.1, 0.3)] * 4
    assert [t.spec.blur_p for t in dino.transforms] == [1.0, 0.1] + [0.5] * 4
    assert [t.spec.solarize_p for t in dino.transforms] == [0.0, 0.2] + [0.0] * 4
    assert dino.num_draws == 6 * NUM_DRAWS and dino.min_side == 32


def test_rotation_turns_the_crop_about_its_centre():
    x = _batch(b=2)
    plain = {"scale": (1.0, 1.0), "ratio": (1.0, 1.0), **OFF, "degrees": 180}
    t = view(16, rotate_p=1.0, **plain)
    u = torch.full((2, NUM_DRAWS), 0.5)  # a centred full crop, no flip
    u[:, 4], u[:, 14], u[:, 15] = 0.9, 0.75, 0.0  # angle 180 * (2 * 0.75 - 1) = 90 degrees
    torch.testing.assert_close(t(x, u), torch.rot90(x, 1, dims=(2, 3)), atol=1e-5, rtol=0)
    u[:, 15] = 0.99  # the draw says "do not rotate"
    torch.testing.assert_close(view(16, rotate_p=0.5, **plain)(x, u), x, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"rotate_p must be a probability in \[0, 1\]"):
        view(16, rotate_p=2.0)


def test_blur_false_turns_the_fixed_per_view_blur_off():
    byol = batched_view_fn("asymmetric_pair", (3, 32, 32), blur=False)
    assert [t.spec.blur_p for t in byol.transforms] == [0.0, 0.0]
    assert [t.spec.solarize_p for t in byol.transforms] == [0.0, 0.2]
    dino = batched_view_fn("multicrop", (3, 32, 32), n_local=2, blur=False)
    assert [t.spec.blur_p for t in dino.transforms] == [0.0] * 4
    with pytest.raises(ValueError, match="pass blur_p=0"):
        batched_view_fn("pair", (3, 32, 32), blur=False)


def test_solarize_false_turns_the_fixed_solarisation_off():
    byol = batched_view_fn("asymmetric_pair", (3, 32, 32), solarize=False)
    assert [t.spec.solarize_p for t in byol.transforms] == [0.0, 0.0]
    assert [t.spec.blur_p for t in byol.transforms] == [1.0, 0.1]  # the rest of the recipe stays
    dino = batched_view_fn("multicrop", (3, 32, 32), n_local=2, solarize=False)
    assert [t.spec.solarize_p for t in dino.transforms] == [0.0] * 4
    with pytest.raises(ValueError, match="solarize=False is for the asymmetric"):
        batched_view_fn("pair", (3, 32, 32), solarize=False)

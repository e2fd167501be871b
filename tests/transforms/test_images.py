import pickle

import pytest
import torch

from contrastkit.transforms import build_view_fn
from contrastkit.transforms.images import image_view, image_view_fn
from contrastkit.transforms.recipes import CropSpec


class FakeImages:
    kind = "images"
    name = "fake"

    def __init__(self, shape):
        self.input_shape = shape


# a full crop and nothing else
PLAIN = {"scale": (1.0, 1.0), "flip_p": 0, "jitter_p": 0, "gray_p": 0, "blur_p": 0}


def _image(channels=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(channels, size, size, generator=g)


@pytest.mark.parametrize("recipe", ["pair", "asymmetric_pair"])
def test_pairs_give_two_views_of_the_image_size_in_unit_range(recipe):
    fn = build_view_fn(recipe, FakeImages((3, 32, 32)))
    torch.manual_seed(0)
    views = fn(_image())
    assert len(views) == 2
    for v in views:
        assert v.shape == (3, 32, 32) and v.dtype == torch.float32
        assert v.min() >= 0 and v.max() <= 1


def test_views_are_random_per_call_and_repeat_under_the_same_seed():
    fn = image_view_fn("pair", (3, 32, 32))
    x = _image()
    torch.manual_seed(7)
    first = fn(x)
    second = fn(x)  # RNG advanced: different views
    torch.manual_seed(7)
    again = fn(x)
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0], second[0])
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_views_do_not_touch_the_input():
    x = _image()
    before = x.clone()
    torch.manual_seed(0)
    image_view_fn("multicrop", (3, 32, 32))(x)
    assert torch.equal(x, before)


def test_grayscale_images_keep_one_channel():
    fn = image_view_fn("pair", (1, 32, 32))
    steps = [type(t).__name__ for t in fn.transforms[0].transforms]
    assert "RandomGrayscale" not in steps
    torch.manual_seed(0)
    views = fn(_image(channels=1))
    assert [tuple(v.shape) for v in views] == [(1, 32, 32), (1, 32, 32)]


def test_asymmetric_pair_follows_byol():
    fn = image_view_fn("asymmetric_pair", (3, 32, 32))
    first, second = fn.transforms

    def probs(compose):
        out = {}
        for t in compose.transforms:
            name = type(t).__name__
            if name == "RandomApply":
                out[type(t.transforms[0]).__name__] = t.p
            elif name == "RandomSolarize":
                out["RandomSolarize"] = t.p
        return out

    assert probs(first) == {"ColorJitter": 0.8, "GaussianBlur": 1.0}
    assert probs(second) == {"ColorJitter": 0.8, "GaussianBlur": 0.1, "RandomSolarize": 0.2}


def test_solarize_always_on_inverts_bright_pixels():
    t = image_view(CropSpec(8, **PLAIN, solarize_p=1))
    x = torch.linspace(0, 1, 64).reshape(1, 8, 8).expand(3, 8, 8).contiguous()
    out = t(x)
    expected = torch.where(x >= 0.5, 1 - x, x)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_rotation_by_a_right_angle_turns_the_crop():
    t = image_view(CropSpec(8, **PLAIN, rotate_p=1))
    t.transforms[2].transforms[0].degrees = [90.0, 90.0]  # the angle is drawn from [90, 90]
    x = _image(size=8)
    torch.testing.assert_close(t(x), torch.rot90(x, 1, dims=(1, 2)), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"rotate_p must be a probability in \[0, 1\]"):
        CropSpec(8, rotate_p=-0.5)


def test_blur_false_turns_the_fixed_per_view_blur_off():
    assert "GaussianBlur" in repr(image_view_fn("asymmetric_pair", (3, 32, 32)).transforms)
    byol = image_view_fn("asymmetric_pair", (3, 32, 32), blur=False)
    assert "GaussianBlur" not in repr(byol.transforms)
    assert "RandomSolarize" in repr(byol.transforms[1].transforms)
    dino = image_view_fn("multicrop", (3, 32, 32), n_local=2, blur=False)
    assert len(dino.transforms) == 4 and "GaussianBlur" not in repr(dino.transforms)
    with pytest.raises(ValueError, match="pass blur_p=0"):
        image_view_fn("pair", (3, 32, 32), blur=False)


def test_solarize_false_turns_the_fixed_solarisation_off():
    byol = image_view_fn("asymmetric_pair", (3, 32, 32), solarize=False)
    assert "RandomSolarize" not in repr(byol.transforms)
    assert "GaussianBlur" in repr(byol.transforms[0].transforms)  # the rest of the recipe stays
    dino = image_view_fn("multicrop", (3, 32, 32), n_local=2, solarize=False)
    assert len(dino.transforms) == 4 and "RandomSolarize" not in repr(dino.transforms)
    assert "RandomSolarize" in repr(image_view_fn("multicrop", (3, 32, 32), n_local=2).transforms)
    with pytest.raises(ValueError, match="solarize=False is for the asymmetric"):
        image_view_fn("pair", (3, 32, 32), solarize=False)


def test_normalisation_uses_given_mean_and_std():
    t = image_view(CropSpec(8, **PLAIN, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25]))
    out = t(torch.full((3, 8, 8), 0.75))
    torch.testing.assert_close(out, torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match="mean and std"):
        CropSpec(8, mean=[0.5], std=None)


def test_crop_larger_than_image_is_refused_with_sizes():
    with pytest.raises(ValueError, match=r"16x16 is too small for crops of size 32x32"):
        image_view_fn("pair", (3, 16, 16), size=32)
    fn = image_view_fn("pair", (3, 32, 32))
    with pytest.raises(ValueError, match=r"20x20 is too small"):
        fn(_image(size=20))


def test_bad_inputs_name_the_problem():
    fn = image_view_fn("pair", (3, 32, 32))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        fn(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="float"):
        fn(torch.zeros(3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="scale"):
        image_view_fn("pair", (3, 32, 32), scale=(0.5, 2.0))
    with pytest.raises(ValueError, match="do not fit"):
        image_view_fn("pair", (3, 32, 32), sharpness=3)


def test_blur_kernel_is_odd_and_about_a_tenth():
    assert [CropSpec(s).blur_kernel for s in (8, 32, 64, 224)] == [3, 3, 7, 23]


def test_view_fn_pickles_for_dataloader_workers():
    fn = image_view_fn("asymmetric_pair", (3, 32, 32))
    clone = pickle.loads(pickle.dumps(fn))
    x = _image()
    torch.manual_seed(3)
    a = fn(x)
    torch.manual_seed(3)
    b = clone(x)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)

import pytest
import torch

from contrastkit.transforms import build_view_fn
from contrastkit.transforms.images import image_view_fn
from contrastkit.transforms.recipes import NUM_GLOBAL, default_local_size


class FakeImages:
    kind = "images"
    name = "fake"

    def __init__(self, shape):
        self.input_shape = shape


def test_default_views_are_two_global_and_eight_local_crops():
    fn = build_view_fn("multicrop", FakeImages((3, 32, 32)))
    torch.manual_seed(0)
    views = fn(torch.rand(3, 32, 32))
    assert len(views) == NUM_GLOBAL + 8
    assert [tuple(v.shape) for v in views[:2]] == [(3, 32, 32)] * 2
    assert [tuple(v.shape) for v in views[2:]] == [(3, 12, 12)] * 8


@pytest.mark.parametrize(("n_local", "global_size", "local_size"), [(0, 24, 8), (3, 28, 10)])
def test_number_and_sizes_are_configurable(n_local, global_size, local_size):
    fn = build_view_fn(
        "multicrop",
        FakeImages((3, 32, 32)),
        n_local=n_local,
        global_size=global_size,
        local_size=local_size,
    )
    torch.manual_seed(0)
    sides = [v.shape[-1] for v in fn(torch.rand(3, 32, 32))]
    assert sides == [global_size] * 2 + [local_size] * n_local


def test_default_local_size_is_three_sevenths_on_the_patch_grid():
    assert default_local_size(32) == 12  # patch 4: 3x3 patches
    assert default_local_size(64) == 24  # patch 8
    assert default_local_size(8) == 4  # patch 2
    assert default_local_size(224) == 84  # patch 28


def test_grayscale_multicrop():
    fn = image_view_fn("multicrop", (1, 8, 8), n_local=2)
    torch.manual_seed(0)
    assert [tuple(v.shape) for v in fn(torch.rand(1, 8, 8))] == [(1, 8, 8)] * 2 + [(1, 4, 4)] * 2


def test_local_crops_are_random_and_seeded():
    fn = image_view_fn("multicrop", (3, 32, 32), n_local=2)
    x = torch.rand(3, 32, 32)
    torch.manual_seed(1)
    a = fn(x)
    torch.manual_seed(1)
    b = fn(x)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[2], a[3])


def test_global_crop_too_large_for_the_image():
    with pytest.raises(ValueError, match=r"32x32 is too small for crops of size 48x48"):
        build_view_fn("multicrop", FakeImages((3, 32, 32)), global_size=48)
    with pytest.raises(ValueError, match="n_local"):
        image_view_fn("multicrop", (3, 32, 32), n_local=-1)

"""Views cut from full-resolution photos: the same batches whoever decodes them."""

import logging

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

import contrastkit.data.folders as folders
from contrastkit.data.folders import build_folder
from contrastkit.training.batches import step_batches
from contrastkit.training.samples import DrawDataset
from contrastkit.transforms import FullResolutionViews, build_batched_view_fn, build_view_fn
from contrastkit.transforms.batched import _GRAY, NUM_DRAWS, BatchedSimCLR
from contrastkit.transforms.full_resolution import crop_box
from contrastkit.transforms.photo_views import colour_matrix, photo_view, resized_crop
from contrastkit.transforms.recipes import CropSpec


@pytest.fixture
def photos(tmp_path, monkeypatch):
    """12 JPEGs of 96x72 (and one PNG), two classes, served streamed (not held in memory)."""
    monkeypatch.setattr(folders, "IN_MEMORY_BYTES", 0)
    generator = torch.Generator().manual_seed(0)
    for k, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        for i in range(6):
            pixels = torch.randint(0, 256, (72, 96, 3), generator=generator, dtype=torch.uint8)
            pixels[..., k] = 255
            Image.fromarray(pixels.numpy()).save(tmp_path / name / f"{i}.jpg", quality=90)
    Image.new("RGB", (80, 80), (0, 255, 0)).save(tmp_path / "a" / "z.png")
    return build_folder(str(tmp_path), train=True, image_size=32)


def _batches(dataset, view_fn, start=0, total=4, **loading):
    run = step_batches(
        dataset, view_fn, seed=3, batch_size=4, start_step=start, total_steps=total, **loading
    )
    return [batch.views for batch in run]


def test_crop_box_lies_in_the_image_with_the_drawn_area():
    spec = CropSpec(size=32, scale=(0.08, 1.0))
    for draws in torch.rand(200, 4, generator=torch.Generator().manual_seed(1)):
        top, left, h, w = crop_box(spec, 375, 500, draws)
        assert 0 <= top <= 375 - h and 0 <= left <= 500 - w and h >= 1 and w >= 1
        assert h * w <= 1.0 * 375 * 500 * 1.01
    assert crop_box(spec, 375, 500, torch.tensor([1.0, 0.5, 0.0, 0.0])) == (0, 0, 375, 433)


def test_crops_come_from_the_full_resolution_photo(photos):
    views = build_batched_view_fn("pair", photos)
    assert isinstance(views, FullResolutionViews) and views.sizes == [32, 32]
    image, _ = photos.load(0)
    assert image.shape == (3, 72, 96)  # the file's own size, not 32x32
    u = torch.rand(views.num_draws, generator=torch.Generator().manual_seed(0))
    crops = views.crop(image, u)
    top, left, h, w = crop_box(views.recipe.views[0], 72, 96, u)
    expected = TF.resized_crop(image, top, left, h, w, [32, 32], antialias=True)
    assert torch.equal(crops[0], expected) and crops[0].dtype == torch.uint8
    with pytest.raises(ValueError, match="u must be"):
        views.crop(image, u[:3])


def test_the_batches_do_not_depend_on_the_workers_and_device_decoding_finishes_crops(photos):
    views = build_batched_view_fn("pair", photos)
    reference = _batches(photos, views)
    assert [tuple(v.shape) for v in reference[0]] == [(4, 3, 32, 32)] * 2
    assert float(reference[0][0].min()) >= 0 and float(reference[0][0].max()) <= 1
    on_device = _batches(photos, views, decode="device")
    for loading, expected in (
        ({"num_workers": 2}, reference),
        ({"decode": "device", "num_workers": 1}, on_device),
    ):
        for ours, theirs in zip(_batches(photos, views, **loading), expected, strict=True):
            assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True)), loading
    # decoding on the device: the crops of the decoded photos, finished as one batch
    run = step_batches(photos, views, seed=3, batch_size=4, start_step=0, total_steps=1)
    indices = next(run).indices
    images = [photos.load(i)[0] for i in indices]
    draws = torch.stack([DrawDataset(photos, views.num_draws, 3, 0)[i][1] for i in indices])
    crops = [torch.stack(c) for c in zip(*map(views.crop, images, draws), strict=True)]
    for a, b in zip(views(crops, draws), on_device[0], strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="--decode must be one of"):
        _batches(photos, views, decode="gpu")


def test_the_pillow_colour_matrix_is_the_batched_jitter_without_clipping():
    spec = CropSpec(size=8, jitter=(0.4, 0.4, 0.4, 0.1))
    draws = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.7, 0.3, 0.8, 0.9]], dtype=torch.float64)
    x = 0.35 + 0.3 * torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x = x.double()
    expected = BatchedSimCLR(spec)._jitter(x, draws, torch.tensor([True, True]))
    for k in range(2):
        mean = float((x[k] * torch.tensor(_GRAY, dtype=torch.float64)[:, None, None]).sum(0).mean())
        matrix = torch.tensor(colour_matrix(spec, draws[k].numpy(), mean), dtype=torch.float64)
        matrix = matrix.view(3, 4)
        ours = torch.einsum("ij,jhw->ihw", matrix[:, :3], x[k]) + matrix[:, 3, None, None]
        torch.testing.assert_close(ours, expected[k], rtol=0, atol=1e-6)
    identity = colour_matrix(spec, draws[0].numpy(), 100.0)
    assert identity == pytest.approx((1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0), abs=1e-12)


def test_pillow_views_on_the_cpu_keep_the_photo_colours(photos):
    views = build_batched_view_fn("pair", photos)
    image, label = photos.load(0)
    u = torch.full((views.num_draws,), 0.99)  # no flip, jitter, grayscale, blur
    (view, _) = views.photo_views(image, u)
    top, left, h, w = crop_box(views.recipe.views[0], 72, 96, u)
    expected = TF.resized_crop(image, top, left, h, w, [32, 32], antialias=True)
    assert view.dtype == torch.uint8 and view.shape == (3, 32, 32)
    assert torch.equal(view, expected)  # the crop the accelerator path cuts, untouched


def test_a_resumed_run_sees_the_same_views_and_labels(photos):
    multicrop = build_batched_view_fn("multicrop", photos)
    full = _batches(photos, multicrop, total=5, labels=True)
    tail = _batches(photos, multicrop, start=3, total=5, labels=True)
    assert len(full[0]) == len(multicrop.sizes) + 1  # the views, then y (B,)
    for a, b in zip(full[3:], tail, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_per_sample_views_also_cut_from_the_photo(photos):
    (x1, x2) = _batches(photos, build_view_fn("pair", photos), total=1)[0]
    assert x1.shape == x2.shape == (4, 3, 32, 32)


def test_a_file_truncated_after_the_check_is_replaced_and_logged(photos, caplog):
    victim = photos.root / photos.names[0]
    victim.write_bytes(victim.read_bytes()[:300])
    views = build_batched_view_fn("pair", photos)
    with caplog.at_level(logging.WARNING, logger="contrastkit.data.streaming"):
        for decode in ("workers", "device"):
            batches = _batches(photos, views, total=3, decode=decode)
            assert all(v.shape == (4, 3, 32, 32) for b in batches for v in b)
    assert photos.skipped >= 1
    assert any("skipping an unreadable image" in r.getMessage() for r in caplog.records)


def test_pillow_views_grey_blur_and_solarise_as_the_batched_pipeline(photos):
    image, _ = photos.load(0)
    u = torch.full((NUM_DRAWS,), 0.5, dtype=torch.float64)  # the blur's sigma: 1.05
    for options, tolerance in (({"gray_p": 1.0, "blur_p": 1.0}, 2), ({"solarize_p": 1.0}, 0)):
        off = {"flip_p": 0.0, "jitter_p": 0.0, "gray_p": 0.0, "blur_p": 0.0}
        spec = CropSpec(size=32, **(off | options))
        box = crop_box(spec, 72, 96, u)
        ours = photo_view(image, spec, box, u.numpy())
        crop = resized_crop(image, box, 32)[None].double() / 255
        expected = BatchedSimCLR(spec, cropped=True)(crop, u[None])[0] * 255
        assert ours.shape == (3, 32, 32) and ours.dtype == torch.uint8
        assert (ours.double() - expected).abs().max() <= tolerance + 1e-6, options
    grey = photo_view(image, CropSpec(size=32, gray_p=1.0), box, u.numpy())
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])

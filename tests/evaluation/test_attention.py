"""Attention maps of a ViT, the 60%-mass mask, the Jaccard index and the figure."""

import pytest
import torch
from PIL import Image

from contrastkit.evaluation.attention import (
    attention_mask,
    cls_attention_maps,
    jaccard,
    load_image,
    save_attention_figure,
    upsample_maps,
)
from contrastkit.models.backbones import build_backbone


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return build_backbone("vit", image_size=32, patch_size=4, dim=32, depth=2, heads=4)


def test_maps_have_the_patch_grid_shape_and_sum_to_one_per_head(vit):
    torch.manual_seed(1)
    maps = cls_attention_maps(vit, torch.rand(3, 3, 32, 32))
    assert maps.shape == (3, 4, 8, 8)
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum(dim=(-2, -1)), torch.ones(3, 4))


def test_maps_follow_the_image_size_and_match_the_full_attention(vit):
    torch.manual_seed(2)
    x = torch.rand(2, 3, 48, 40)
    maps = cls_attention_maps(vit, x)
    assert maps.shape == (2, 4, 12, 10)
    torch.testing.assert_close(maps.sum(dim=(-2, -1)), torch.ones(2, 4))
    # the map is the [CLS] row of the last block's softmax without the [CLS] column, renormalised
    vit.eval()
    with torch.no_grad():
        row = vit.last_attention(x)[:, :, 0, 1:]
    expected = (row / row.sum(-1, keepdim=True)).reshape(2, 4, 12, 10)
    torch.testing.assert_close(maps, expected)


def test_maps_of_a_backbone_without_attention_are_refused():
    cnn = build_backbone("cnn", image_size=32, width=4)
    with pytest.raises(ValueError, match="backbone must be a ViT"):
        cls_attention_maps(cnn, torch.rand(1, 3, 32, 32))


def test_extraction_restores_training_mode(vit):
    vit.train()
    cls_attention_maps(vit, torch.rand(1, 3, 32, 32))
    assert vit.training


def test_keep_sixty_percent_of_the_mass_on_a_hand_made_map():
    attn = torch.tensor([[0.05, 0.30, 0.05], [0.20, 0.02, 0.15], [0.10, 0.03, 0.10]])
    # sorted: 0.30, 0.20, 0.15 | 0.10 ... -> the mass above the 4th patch is 0.65 >= 0.6
    expected = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=torch.bool)
    assert torch.equal(attention_mask(attn, 0.6), expected)
    # unnormalised maps give the same mask
    assert torch.equal(attention_mask(attn * 7.0, 0.6), expected)


def test_keep_mass_reached_exactly_stops_there():
    attn = torch.tensor([[0.4, 0.2], [0.3, 0.1]])
    # 0.4 + 0.2 = 0.6 exactly (up to rounding): two patches suffice
    assert torch.equal(attention_mask(attn, 0.6), torch.tensor([[1, 0], [1, 0]], dtype=bool))
    # a single dominant patch holds more than 60% alone
    peaked = torch.tensor([[0.7, 0.1], [0.1, 0.1]])
    assert attention_mask(peaked, 0.6).sum() == 1
    # the kept set always holds at least keep_mass, and drops a patch only if it must
    torch.manual_seed(3)
    maps = torch.rand(5, 4, 6, 6)
    masks = attention_mask(maps, 0.6)
    kept = (maps * masks).sum(dim=(-2, -1)) / maps.sum(dim=(-2, -1))
    assert (kept >= 0.6 - 1e-6).all()
    smallest_kept = torch.where(masks, maps, torch.inf).amin(dim=(-2, -1))
    assert ((kept - smallest_kept / maps.sum(dim=(-2, -1))) < 0.6).all()


def test_keep_mass_of_one_keeps_every_positive_patch_and_batches_stay_apart():
    maps = torch.tensor([[[1.0, 0.0], [2.0, 3.0]], [[0.0, 0.0], [0.0, 5.0]]])
    masks = attention_mask(maps, 1.0)
    assert torch.equal(masks, torch.tensor([[[1, 0], [1, 1]], [[0, 0], [0, 1]]], dtype=bool))


@pytest.mark.parametrize("keep_mass", [0.0, -0.1, 1.5])
def test_keep_mass_out_of_range_is_refused(keep_mass):
    with pytest.raises(ValueError, match="keep_mass"):
        attention_mask(torch.rand(4, 4), keep_mass)


def test_negative_or_empty_maps_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        attention_mask(-torch.ones(2, 2))
    with pytest.raises(ValueError, match="positive sum"):
        attention_mask(torch.zeros(2, 2))


def test_jaccard_on_hand_made_masks():
    a = torch.zeros(4, 4, dtype=torch.bool)
    a[:2, :2] = True  # 4 pixels
    b = torch.zeros(4, 4, dtype=torch.bool)
    b[1:3, 1:3] = True  # 4 pixels, 1 shared
    assert jaccard(a, b).item() == pytest.approx(1 / 7)
    assert jaccard(a, a).item() == 1.0
    assert jaccard(a, ~a).item() == 0.0
    empty = torch.zeros(4, 4, dtype=torch.bool)
    assert jaccard(empty, empty).item() == 1.0
    assert jaccard(a, empty).item() == 0.0
    # batched, and the true mask broadcasts over heads
    preds = torch.stack([a, b, ~a])[None]  # (1, 3, 4, 4)
    torch.testing.assert_close(jaccard(preds, a), torch.tensor([[1.0, 1 / 7, 0.0]]))


def test_jaccard_refuses_non_bool_or_mismatched_masks():
    with pytest.raises(ValueError, match="bool"):
        jaccard(torch.ones(2, 2), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="same H, W"):
        jaccard(torch.ones(2, 2, dtype=bool), torch.ones(3, 3, dtype=bool))


def test_upsample_copies_each_patch_into_a_block():
    maps = torch.tensor([[0.1, 0.2], [0.3, 0.4]])
    up = upsample_maps(maps, (4, 4))
    assert up.shape == (4, 4)
    assert torch.equal(up[:2, :2], torch.full((2, 2), 0.1))
    assert torch.equal(up[2:, 2:], torch.full((2, 2), 0.4))
    mask = upsample_maps(torch.tensor([[True, False], [False, True]]), (4, 4))
    assert mask.dtype == torch.bool and mask.sum() == 8


def test_figure_is_a_png_of_the_expected_grid(tmp_path, vit):
    torch.manual_seed(4)
    images = torch.rand(2, 3, 32, 32)
    maps = cls_attention_maps(vit, images)
    true = torch.zeros(2, 32, 32, dtype=torch.bool)
    true[:, 8:24, 8:24] = True
    path = save_attention_figure(tmp_path / "grid.png", images, maps, true_masks=true)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        # columns: image, 4 heads, mean, mask, true mask = 8 panels of 1.4 in at 100 dpi
        assert img.width == pytest.approx(8 * 140, abs=2)
        assert img.height == pytest.approx(2 * 140 + 30, abs=2)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temporary file left


def test_a_decompression_bomb_is_an_os_error_naming_the_file(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (40, 30), "red").save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL refuses over 2x this many pixels
    with pytest.raises(OSError, match="cannot read image .*bomb.png.*decompression bomb"):
        load_image(path, 16)

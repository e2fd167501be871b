"""CLIP's views: a square crop of the image and one phrasing of its caption."""

import pytest
import torch

from contrastkit.transforms import build_view_fn


class Captioned:
    kind = "images"
    input_shape = (3, 24, 24)


def sample(k: int = 5, length: int = 6):
    image = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0))
    ids = torch.arange(k * length).reshape(k, length)
    return image, ids


def test_views_are_a_crop_and_one_row_of_ids_reproducibly():
    view_fn = build_view_fn("image_text", Captioned())
    image, ids = sample()
    torch.manual_seed(3)
    crop, chosen = view_fn((image, ids))
    assert crop.shape == (3, 24, 24) and chosen.shape == (6,)
    assert any(torch.equal(chosen, row) for row in ids)
    torch.manual_seed(3)
    again = view_fn((image, ids))
    assert torch.equal(again[0], crop) and torch.equal(again[1], chosen)
    picked = set()
    for seed in range(40):
        torch.manual_seed(seed)
        picked.add(int(view_fn((image, ids))[1][0]))
    assert len(picked) == 5  # every phrasing gets used


def test_colours_are_never_changed():
    view_fn = build_view_fn("image_text", Captioned(), scale=(1.0, 1.0))
    image = torch.zeros(3, 24, 24)
    image[0] = 1.0  # pure red stays pure red: captions name colours
    crop, _ = view_fn((image, torch.zeros(1, 4, dtype=torch.long)))
    assert torch.allclose(crop, image)


def test_bad_samples_and_options():
    view_fn = build_view_fn("image_text", Captioned())
    with pytest.raises(ValueError, match="CaptionedImages"):
        view_fn(torch.rand(3, 24, 24))
    with pytest.raises(ValueError, match=r"\(K, L\) long"):
        view_fn((torch.rand(3, 24, 24), torch.zeros(4)))
    with pytest.raises(ValueError, match="image_text"):
        build_view_fn("image_text", Captioned(), jitter=0.4)
    with pytest.raises(ValueError, match="scale"):
        build_view_fn("image_text", Captioned(), scale=(0.0, 1.0))

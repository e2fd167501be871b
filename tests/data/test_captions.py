"""Caption phrasings for CLIP and the dataset that carries their token ids."""

import pytest
import torch

from contrastkit.data.captions import (
    SHAPES_TEMPLATES,
    CaptionedImages,
    caption_choices,
    shapes_caption,
    size_word,
)
from contrastkit.data.shapes import DEFAULT_HOLDOUT, build_shapes
from contrastkit.methods import CLIP
from contrastkit.models.text import Tokenizer


def test_templates_fill_articles_and_sizes():
    assert shapes_caption("red", "star", "{a} {color} {shape}") == "a red star"
    assert shapes_caption("orange", "cross", "a picture of {a} {color} {shape}") == (
        "a picture of an orange cross"
    )
    assert size_word(0.23) == "small" and size_word(0.30) == "medium-sized"
    assert size_word(0.37) == "large"
    assert shapes_caption("blue", "square", "a photo of a {size} {color} {shape}", 0.23) == (
        "a photo of a small blue square"
    )


def test_shapes_get_every_template_and_never_a_held_out_pair():
    ds = build_shapes(train=True, seed=0, size=16, n=300)
    choices = caption_choices(ds)
    assert len(choices) == len(ds)
    assert all(len(c) == len(SHAPES_TEMPLATES) for c in choices)
    assert choices[0][0] == ds.captions[0]  # the first phrasing is the dataset's own
    text = " | ".join(c for phrasings in choices for c in phrasings)
    for color, shape in DEFAULT_HOLDOUT:
        assert f"{color} {shape}" not in text


def test_other_captioned_data_keeps_its_single_caption():
    class Pairs:
        captions = ["a cat", "a dog"]

    assert caption_choices(Pairs()) == [["a cat"], ["a dog"]]

    class NoCaptions:
        name = "digits"

    with pytest.raises(ValueError, match="'digits' has no captions"):
        caption_choices(NoCaptions())


def test_captioned_images_carry_token_ids_and_forward_attributes():
    ds = build_shapes(train=True, seed=0, size=16, n=50)
    tok = Tokenizer(**{"words": CLIP.options_from_data(ds)["vocab"], "context_length": 14})
    wrapped = CaptionedImages(ds, tok)
    (image, ids), y = wrapped[3]
    assert torch.equal(image, ds[3][0]) and y == ds[3][1]
    assert ids.shape == (len(SHAPES_TEMPLATES), 14) and ids.dtype == torch.long
    assert tok.decode(ids[0]) == ds.captions[3]
    assert len(wrapped) == len(ds)
    assert wrapped.kind == "images" and wrapped.input_shape == ds.input_shape
    assert wrapped.unseen is ds.unseen

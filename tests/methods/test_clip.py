"""CLIP: learned temperature and its clamp, the loss, the towers, saving and reloading."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.data.shapes import build_shapes
from contrastkit.methods import CLIP, METHODS
from contrastkit.models.backbones import build_backbone
from contrastkit.models.text import UNK, Tokenizer

CAPTIONS = ["a red star", "a blue circle", "a green square", "a photo of a red circle"]


def tiny_clip(**options) -> CLIP:
    torch.manual_seed(0)
    backbone = build_backbone("cnn", image_size=16, width=4)
    tok = Tokenizer.build(CAPTIONS)
    values = {
        "vocab": tok.words,
        "context_length": tok.context_length,
        "embed_dim": 8,
        "text_width": 16,
        "text_depth": 1,
        "text_heads": 2,
    }
    return CLIP(backbone, **{**values, **options})


def views(model: CLIP, batch: int = 4) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(batch, 3, 16, 16, generator=generator)
    return [images, model.tokenizer(CAPTIONS[:batch])]


def test_registered_with_image_text_recipe():
    assert METHODS["clip"] is CLIP
    assert CLIP.view_recipe == "image_text"


def test_logit_scale_starts_at_1_over_007_receives_a_gradient_and_moves():
    model = tiny_clip()
    assert model.log_logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    before = model.log_logit_scale.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    out = model.training_step(views(model))
    out["loss"].backward()
    assert model.log_logit_scale.grad is not None
    assert model.log_logit_scale.grad.abs().item() > 0
    optimizer.step()
    assert not torch.equal(model.log_logit_scale.detach(), before)
    assert out["temperature"].item() == pytest.approx(0.07, rel=1e-5)
    assert out["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-5)


def test_clamp_holds_the_scale_at_100():
    model = tiny_clip()
    with torch.no_grad():
        model.log_logit_scale.fill_(math.log(1000.0))
    model.after_step(0, 10, {})
    assert model.logit_scale.item() <= 100.0 + 1e-4
    assert model.log_logit_scale.item() == pytest.approx(math.log(100.0))
    with torch.no_grad():  # below the clamp nothing changes
        model.log_logit_scale.fill_(math.log(20.0))
    model.after_step(1, 10, {})
    assert model.logit_scale.item() == pytest.approx(20.0, rel=1e-6)


def test_loss_is_the_symmetric_cross_entropy_of_the_towers():
    model = tiny_clip().eval()
    images, ids = views(model)
    out = model.training_step([images, ids])
    with torch.no_grad():
        img = F.normalize(model.image_projection(model.backbone(images)), dim=-1).double()
        txt = F.normalize(model.text_projection(model.text(ids)), dim=-1).double()
        logits = (1 / 0.07) * img @ txt.T
        # per-row formulas, not the library's vectorised code
        rows = [-(logits[i, i] - torch.logsumexp(logits[i], 0)) for i in range(4)]
        cols = [-(logits[i, i] - torch.logsumexp(logits[:, i], 0)) for i in range(4)]
        expected = (sum(rows) / 4 + sum(cols) / 4) / 2
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["embedding"].shape == (4, 8)
    torch.testing.assert_close(out["embedding"].norm(dim=1), torch.ones(4))


def test_embed_returns_h_and_encoders_are_normalised():
    model = tiny_clip().eval()
    images, _ = views(model)
    assert model.embed(images).shape == (4, model.backbone.feature_dim)
    image = model.encode_image(images)
    text = model.encode_text(["a red star", "a purple star"])  # "purple" is unknown
    assert image.shape == (4, 8) and text.shape == (2, 8)
    torch.testing.assert_close(text.norm(dim=1), torch.ones(2))
    assert model.tokenizer.decode(model.tokenizer.encode("a purple star")) == f"a {UNK} star"


def test_bad_views_and_options_are_refused():
    model = tiny_clip()
    images, ids = views(model)
    with pytest.raises(ValueError, match="images, token_ids"):
        model.training_step([images])
    with pytest.raises(ValueError, match="same B"):
        model.training_step([images, ids[:3]])
    with pytest.raises(ValueError, match="vocab is empty"):
        CLIP(build_backbone("cnn", image_size=16, width=4), vocab=[])
    with pytest.raises(ValueError, match="max_logit_scale"):
        tiny_clip(init_temperature=0.001)


def test_options_from_data_builds_the_vocabulary_from_every_phrasing():
    ds = build_shapes(train=True, seed=0, size=16, n=200)
    options = CLIP.options_from_data(ds)
    assert json.loads(json.dumps(options)) == options  # stored in config.json
    words = set(options["vocab"])
    assert {"photo", "picture", "small", "star", "red", "circle"} <= words
    assert options["context_length"] >= 7 + 2  # "a photo of a small red star" and more


def test_options_from_data_refuses_data_without_captions():
    class Points:
        name = "toy"

    with pytest.raises(ValueError, match="no captions"):
        CLIP.options_from_data(Points())


def test_state_dict_and_config_round_trip_gives_identical_embeddings(tmp_path):
    model = tiny_clip()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(3):
        optimizer.zero_grad()
        out = model.training_step(views(model))
        out["loss"].backward()
        optimizer.step()
        model.after_step(step, 3, out)
    options = {
        "vocab": model.tokenizer.words,
        "context_length": model.tokenizer.context_length,
        "embed_dim": 8,
        "text_width": 16,
        "text_depth": 1,
        "text_heads": 2,
    }
    (tmp_path / "options.json").write_text(json.dumps(options))
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    torch.manual_seed(123)  # a different initialisation, overwritten by the weights
    again = CLIP(
        build_backbone("cnn", image_size=16, width=4),
        **json.loads((tmp_path / "options.json").read_text()),
    )
    again.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    model.eval(), again.eval()
    assert again.tokenizer.vocab == model.tokenizer.vocab
    images, _ = views(model)
    assert torch.equal(again.encode_image(images), model.encode_image(images))
    texts = ["a red star", "a photo of a purple circle"]
    assert torch.equal(again.encode_text(texts), model.encode_text(texts))

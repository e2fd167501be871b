"""The Method contract, checked for every method in ``METHODS`` (a new one is checked too).

Each method is built on a tiny CNN with small widths (the options below that its constructor
takes) and the options it derives from a tiny captioned dataset, then fed tiny views of its
``view_recipe``.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from method_testing import random_views, tiny_cnn
from torch import Tensor, nn

from contrastkit.methods import METHODS
from contrastkit.methods.base import STATE_PREFIX, Method
from contrastkit.models.text import Tokenizer
from contrastkit.transforms import VIEW_RECIPES

B = 8
TINY = {
    "hidden_dim": 16,
    "out_dim": 8,
    "pred_hidden_dim": 8,
    "bottleneck_dim": 8,
    "queue_size": 16,
    "embed_dim": 8,
    "text_width": 16,
    "text_depth": 1,
    "text_heads": 2,
}
CAPTIONS = [f"a {c} {s}" for c in ("red", "blue", "green", "purple") for s in ("star", "circle")]


class TinyCaptioned:
    """A stand-in training set: 16 captioned, labelled images (what ``options_from_data`` reads)."""

    captions = CAPTIONS * 2
    labels = torch.arange(16) % 4
    class_names = ["red", "blue", "green", "purple"]

    def __len__(self) -> int:
        return len(self.captions)


def build(name: str) -> Method:
    cls = METHODS[name]
    torch.manual_seed(0)
    accepted = inspect.signature(cls).parameters
    options = {key: value for key, value in TINY.items() if key in accepted}
    options.update(cls.options_from_data(TinyCaptioned()))
    method = cls(tiny_cnn(), **options)
    method.setup(total_steps=10, steps_per_epoch=5)
    return method


def tiny_views(method: Method, seed: int = 1) -> list[Tensor]:
    views = recipe_views(method, seed)
    if method.needs_labels:  # the supervised yardstick: the batch's classes after the views
        views.append(torch.arange(B) % len(TinyCaptioned.class_names))
    return views


def recipe_views(method: Method, seed: int) -> list[Tensor]:
    recipe = method.view_recipe
    if recipe in ("pair", "asymmetric_pair"):
        return random_views(2, batch=B, seed=seed)
    if recipe == "multicrop":  # 2 global crops, 2 smaller local crops
        return random_views(2, batch=B, seed=seed) + random_views(2, B, size=8, seed=seed + 1)
    if recipe == "image_text":
        return [random_views(1, batch=B, seed=seed)[0], method.tokenizer(CAPTIONS[:B])]
    raise AssertionError(f"give tiny_views a case for the view recipe {recipe!r}")


def overrides(method: Method, name: str) -> bool:
    return getattr(type(method), name) is not getattr(Method, name)


names = pytest.mark.parametrize("name", list(METHODS))


@names
def test_training_step_returns_a_finite_scalar_loss_and_after_step_runs(name):
    method = build(name)
    out = method.training_step(tiny_views(method))
    loss = out["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
    loss.backward()
    for key, value in out.items():
        assert isinstance(value, Tensor), key
        if key == "embedding":
            assert value.ndim == 2 and value.shape[0] == B
        elif key != "loss" and not key.startswith(STATE_PREFIX):
            assert value.ndim == 0, f"{key}: the trainer logs scalars only"
        assert key == "loss" or not value.requires_grad, f"{key} keeps a graph"
    method.after_step(0, 10, out)


@names
def test_embed_returns_the_representation_of_the_backbone(name):
    method = build(name).eval()
    with torch.no_grad():
        h = method.embed(tiny_views(method)[0])
    assert h.shape == (B, method.backbone.feature_dim)


@names
def test_declared_attributes_have_their_types(name):
    method = build(name)
    assert method.view_recipe in VIEW_RECIPES
    clip = method.default_clip_grad
    assert clip is None or (isinstance(clip, float) and clip > 0)
    assert isinstance(method.supports_gradient_cache, bool)
    assert method.teacher_backbone is None or isinstance(method.teacher_backbone, nn.Module)
    assert method.tokenizer is None or isinstance(method.tokenizer, Tokenizer)
    negatives = method.num_negatives(B)
    assert negatives is None or (isinstance(negatives, int) and negatives >= 0)
    method.check_batch_size(B)
    grouped = [id(p) for group in method.parameter_groups() for p in group["params"]]
    trainable = [id(p) for p in method.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)  # every trainable tensor, once


@names
def test_gradient_cache_is_declared_exactly_where_the_halves_compose_to_the_step(name):
    method = build(name)
    halves = [overrides(method, "embed_views"), overrides(method, "loss_from_embeddings")]
    assert halves == [method.supports_gradient_cache] * 2
    if not method.supports_gradient_cache:
        with pytest.raises(NotImplementedError):
            method.embed_views(tiny_views(method))
        return
    views = tiny_views(method)
    torch.manual_seed(3)
    expected = method.training_step(views)["loss"]
    torch.manual_seed(3)
    loss = method.loss_from_embeddings(method.embed_views(views))["loss"]
    torch.testing.assert_close(loss, expected)


@names
def test_state_moves_only_in_after_step_with_the_outputs_it_is_given(name):
    """An extra training_step (a validation pass) leaves no trace: state travels in outputs."""
    with_extra, plain = build(name).eval(), build(name).eval()  # eval: no BatchNorm updates
    views = tiny_views(plain)
    with_extra.training_step(tiny_views(with_extra, seed=9))
    for method in (with_extra, plain):
        method.after_step(0, 10, method.training_step(views))
    expected = plain.state_dict()
    for key, value in with_extra.state_dict().items():
        torch.testing.assert_close(value, expected[key], msg=key)

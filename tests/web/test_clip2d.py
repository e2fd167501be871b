"""The 2-D CLIP of the browser demo: it learns, step by step, on the unit circle."""

import json
import math

import pytest
import torch

from contrastkit.web.clip2d import Clip2D


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_loss_falls_and_accuracy_rises_above_chance(seed):
    model = Clip2D(seed=seed)
    start = model.state()
    assert start["epoch"] == 0 and start["chance"] == pytest.approx(1 / 3)
    losses, accuracies = [start["loss"]], [start["accuracy"]]
    for _ in range(4):
        state = model.step(10)
        losses.append(state["loss"])
        accuracies.append(state["accuracy"])
    assert state["epoch"] == 40
    assert losses[-1] < 0.7 * losses[0]
    assert losses[-1] < math.log(3) - 0.3  # below the degenerate all-equal state
    assert accuracies[-1] >= state["chance"] + 0.3


def test_state_is_json_ready_points_on_the_unit_circle():
    model = Clip2D(labels=["circle", "star"], images_per_label=5, seed=3)
    state = model.step()
    assert json.loads(json.dumps(state)) == state
    assert len(state["image_xy"]) == 10 and len(state["text_xy"]) == 2
    for x, y in state["image_xy"] + state["text_xy"]:
        assert math.hypot(x, y) == pytest.approx(1.0, abs=1e-5)
    assert state["labels"] == ["circle", "star"]
    assert state["prompts"] == ["a photo of a circle", "a photo of a star"]
    assert sorted(set(state["image_labels"])) == [0, 1]
    assert len(state["predictions"]) == 10 and len(state["image_colors"]) == 10
    assert state["temperature"] > 0


def test_same_seed_same_run_and_reset_starts_over():
    a, b = Clip2D(seed=5), Clip2D(seed=5)
    assert a.step(3) == b.step(3)
    first = Clip2D(seed=5).state()
    a.reset(new_scatter=False)
    assert a.state() == first
    a.reset()  # a new random scatter, same images
    fresh = a.state()
    assert fresh["epoch"] == 0 and fresh["image_xy"] != first["image_xy"]
    assert fresh["image_labels"] == first["image_labels"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": ["circle"]}, "at least 2 distinct"),
        ({"labels": ["circle", "circle"]}, "at least 2 distinct"),
        ({"labels": ["circle", "hexagon"]}, "not shapes"),
        ({"images_per_label": 0}, "images_per_label"),
        ({"lr": 0}, "lr"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Clip2D(**kwargs)


def test_step_count_must_be_positive():
    with pytest.raises(ValueError, match="positive int"):
        Clip2D(images_per_label=2).step(0)


def test_held_out_images_are_scenes_it_never_trains_on():
    model = Clip2D(seed=5, images_per_label=4, heldout_per_label=3)
    assert model.heldout_images.shape == (9, model.images.shape[1])
    # no held-out picture is one of the training pictures
    distances = torch.cdist(model.heldout_images, model.images)
    assert float(distances.min()) > 0
    heldout = model.step(2)["heldout"]
    assert heldout["count"] == 9 and sorted(set(heldout["image_labels"])) == [0, 1, 2]
    assert heldout["accuracy"] == pytest.approx(
        sum(p == t for p, t in zip(heldout["predictions"], heldout["image_labels"], strict=True))
        / 9
    )
    assert (
        Clip2D(seed=5, images_per_label=2, heldout_per_label=0).state()["heldout"]["accuracy"]
        is None
    )
    with pytest.raises(ValueError, match="heldout_per_label"):
        Clip2D(heldout_per_label=-1)


def test_a_class_prompt_typed_again_lands_on_itself():
    model = Clip2D(labels=["circle", "star"], images_per_label=3, seed=1)
    state = model.step(2)
    answer = model.embed_prompt("a photo of a star")
    assert answer["xy"] == pytest.approx(state["text_xy"][1], abs=1e-6)
    assert answer["prompt_similarity"][1] == pytest.approx(1.0, abs=1e-6)
    assert model.embed_prompt("star photo of a moon")["unknown_words"] == ["moon"]
    with pytest.raises(ValueError, match="text"):
        model.embed_prompt("!!")

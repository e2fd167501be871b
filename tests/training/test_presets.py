"""Built-in recipes: which one --preset picks, what overrides it, and that every one trains.

Precedence, lowest first: the recipe of (method, data), the user's --config TOML, flags and
--set. Every (method, data) recipe is built and takes one step with a tiny batch and backbone
(under a second each on a 2-core CPU, most of it the first call of each layer).
"""

import functools
import logging

import pytest
import torch

from contrastkit.cli import build_parser
from contrastkit.cli.train import build_config
from contrastkit.data import build_dataset
from contrastkit.methods import METHODS
from contrastkit.training.batches import step_batches
from contrastkit.training.config import TrainConfig
from contrastkit.training.presets import (
    NO_RECIPE,
    RECIPE_DATA,
    UNSUPPORTED,
    announce,
    apply_preset,
    find_recipe,
    load_recipe,
    recipe_names,
)
from contrastkit.training.resolve import resolve_config
from contrastkit.training.runs import read_config, read_metrics
from contrastkit.training.trainer import prepare, train


def _config(*argv: str) -> TrainConfig:
    return build_config(build_parser().parse_args(["train", *argv]))


@functools.cache
def _train_split(name: str):
    return build_dataset(name, train=True, seed=0)


def test_the_recipe_of_method_and_data_is_picked():
    config = _config("--method", "moco", "--data", "shapes")
    assert (config.preset, config.recipe) == ("auto", "moco-shapes")
    assert config.method_options["queue_size"] == 1024 and config.backbone == "cnn"
    assert config.view_options["rotate_p"] == 1.0
    assert config.epochs == load_recipe("moco-shapes")["epochs"]


def test_config_file_beats_the_recipe_and_flags_beat_both(tmp_path):
    own = tmp_path / "mine.toml"
    own.write_text("lr = 0.01\nbatch_size = 64\n[method_options]\nqueue_size = 512\n")
    config = _config("--method", "moco", "--data", "shapes", "--config", str(own))
    assert (config.lr, config.batch_size, config.method_options["queue_size"]) == (0.01, 64, 512)
    assert config.method_options["momentum"] == 0.99  # the recipe's, not overridden
    config = _config(
        "--method", "moco", "--data", "shapes", "--config", str(own), "--lr", "0.5",
        "--set", "queue_size=256",
    )  # fmt: skip
    assert (config.lr, config.batch_size, config.method_options["queue_size"]) == (0.5, 64, 256)


def test_a_run_length_in_the_other_unit_replaces_the_recipes():
    config = _config("--data", "toy", "--epochs", "2")
    assert (config.epochs, config.steps) == (2, None)  # the recipe's steps = 100 is dropped


def test_another_backbone_drops_the_recipes_backbone_options():
    config = _config("--data", "shapes", "--backbone", "resnet18")
    assert config.recipe == "simclr-shapes"
    assert config.backbone == "resnet18" and config.backbone_options == {}


def test_a_backbone_of_its_own_has_its_recipe():
    config = _config("--method", "dino", "--data", "shapes", "--backbone", "vit")
    assert config.recipe == "dino-vit-shapes" and config.backbone_options["patch_size"] == 4


def test_a_temperature_option_beats_the_recipes_temperature():
    config = _config("--data", "toy", "--set", "temperature=0.3")
    assert config.temperature is None and config.method_options["temperature"] == 0.3


def test_one_line_names_the_recipe_once_the_run_starts(caplog):
    with caplog.at_level(logging.INFO):
        config = _config("--method", "moco", "--data", "shapes")
        assert not [r for r in caplog.records if r.getMessage().startswith("recipe")]
        announce(config)  # the trainer's call, after every check passed
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("recipe")]
    assert lines == ["recipe: moco-shapes (built in; --preset paper for the paper's settings)"]


def test_preset_paper_applies_no_recipe():
    config = _config("--data", "toy", "--preset", "paper")
    assert (config.preset, config.recipe) == ("paper", NO_RECIPE)
    resolved = resolve_config(config, _train_split("toy"))
    assert resolved.backbone_options == {"hidden_dims": [8], "final_relu": True}  # the classic


def test_preset_seed_is_the_blogs_toy_experiment():
    config = _config("--preset", "seed")
    assert (config.method, config.data, config.recipe) == ("simclr", "toy", "seed")
    assert (config.steps, config.batch_size, config.temperature) == (100, 16, 0.5)
    assert config.backbone == "mlp"
    assert config.backbone_options == {"hidden_dims": [8], "final_relu": True}
    assert config.method_options == {"hidden_dim": 8, "out_dim": 4}
    with pytest.raises(ValueError, match="--preset seed is the toy experiment"):
        _config("--preset", "seed", "--method", "moco")


@pytest.mark.parametrize(("method", "data"), sorted(UNSUPPORTED))
def test_a_method_that_cannot_train_on_the_data_says_why(method, data):
    with pytest.raises(ValueError, match=f"--method {method} cannot train on --data {data}: "):
        _config("--method", method, "--data", data)


def test_data_without_a_recipe_gets_none():
    assert find_recipe("simclr", "folder:/some/photos") is None
    assert find_recipe("simclr", "cifar10:/data") is None
    with pytest.raises(ValueError, match="no built-in recipe 'simclr-nope'; known: .*moco"):
        load_recipe("simclr-nope")


def test_the_python_api_gets_the_recipe_once():
    config = resolve_config(TrainConfig(method="moco", data="toy", out="x"), _train_split("toy"))
    assert config.recipe == "moco-toy" and config.method_options["queue_size"] == 64
    again = TrainConfig.from_dict(config.to_dict())  # config.json, read back for --resume
    assert apply_preset(again) == again
    assert resolve_config(again, _train_split("toy")) == config


def test_a_user_value_beats_the_recipe_in_the_python_api():
    config = TrainConfig(method="moco", data="toy", method_options={"queue_size": 32}, out="x")
    assert apply_preset(config).method_options["queue_size"] == 32


RECIPES = [
    (method, data)
    for method in METHODS
    for data in RECIPE_DATA
    if (method, data) not in UNSUPPORTED
]


def test_every_method_has_a_recipe_for_every_data_it_can_train_on():
    names = set(recipe_names())
    assert {f"{m}-{d}" for m, d in RECIPES} <= names
    for name in names - {"seed"}:  # every file names a method and a data, and says so inside
        values = load_recipe(name)
        assert name.split("-")[0] == values["method"] and name.split("-")[-1] == values["data"]


def _tiny(method: str, data: str, backbone: str | None, **settings) -> TrainConfig:
    """The recipe's config with a batch of 8 and, for the CNN, width 4: one step in a blink."""
    images = load_recipe(find_recipe(method, data, backbone)).get("backbone", "cnn") == "cnn"
    tiny = {"width": 4} if data != "toy" and images else {}  # the small CNN of the images
    flags = {"backbone": backbone} if backbone else {}
    return TrainConfig(
        method=method, data=data, batch_size=8, backbone_options=tiny, **flags, **settings
    )


@pytest.mark.parametrize(("method", "data"), [*RECIPES, ("dino", "shapes-vit")])
def test_every_recipe_builds_and_takes_one_step(method, data):
    data, _, backbone = data.partition("-")
    config = _tiny(method, data, backbone or None, out="unused")
    config, dataset, model, view_fn = prepare(config, dataset=_train_split(data))
    assert config.recipe == find_recipe(method, data, backbone or None)
    assert type(model) is METHODS[method]
    model.setup(total_steps=1, steps_per_epoch=1)
    batch = next(iter(step_batches(
        dataset, view_fn, seed=0, batch_size=8, start_step=0, total_steps=1,
        labels=model.needs_labels,
    )))  # fmt: skip
    out = model.training_step(batch.views)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    model.after_step(0, 1, out)


@pytest.mark.slow
def test_the_trainer_hands_the_labels_to_the_supervised_yardstick(tmp_path):
    config = _tiny("supervised", "toy", None, steps=2, eval=False, eval_every=0, progress=False)
    config.out = str(tmp_path / "run")
    run_dir = train(config, dataset=_train_split("toy"))
    saved = read_config(run_dir)  # config.json says which preset and recipe were used
    assert (saved.preset, saved.recipe, saved.method_options) == (
        "auto",
        "supervised-toy",
        {"num_classes": 5},
    )
    records = [r for r in read_metrics(run_dir) if "loss" in r]
    assert len(records) == 2 and all(0.0 <= r["accuracy"] <= 1.0 for r in records)

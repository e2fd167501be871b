import subprocess
import sys

import pytest

from contrastkit.data import build_dataset
from contrastkit.methods import METHODS
from contrastkit.training.config import (
    TrainConfig,
    check_config,
    resumable_fields,
    settings,
)
from contrastkit.training.files import load_toml
from contrastkit.training.presets import load_recipe, recipe_names
from contrastkit.training.resolve import resolve_config
from contrastkit.training.runs import build_method

RECIPES = recipe_names()


def test_toy_defaults_are_the_classic_experiment():
    config = TrainConfig(data="toy", preset="paper", out="x")  # no recipe: the data's defaults
    config = resolve_config(config, build_dataset("toy"))
    assert (config.steps, config.epochs, config.batch_size) == (100, None, 16)
    assert config.backbone == "mlp"
    assert config.backbone_options == {"hidden_dims": [8], "final_relu": True}
    assert config.method_options["out_dim"] == 4 and config.input_shape == [2]


def test_explicit_values_beat_dataset_defaults():
    given = TrainConfig(
        data="toy", epochs=3, temperature=0.2, backbone_options={"hidden_dims": [4]}, out="x"
    )
    given.preset = "paper"  # the dataset's defaults alone, no built-in recipe
    config = resolve_config(given, build_dataset("toy"))
    assert config.steps is None and config.epochs == 3
    assert config.method_options["temperature"] == 0.2
    assert config.backbone_options == {"hidden_dims": [4], "final_relu": True}
    assert TrainConfig.from_dict(config.to_dict()) == config  # JSON round trip


def test_resolved_digits_config_and_default_out():
    config = resolve_config(TrainConfig(), build_dataset("digits"))
    assert config.backbone == "cnn" and config.input_shape == [1, 8, 8]
    assert config.out.startswith("runs/simclr-digits-")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("method", "simclrr", "unknown method 'simclrr'; expected one of: .*simclr"),
        ("epochs", 0, "epochs must be a positive integer"),
        ("steps", -3, "steps must be a positive integer"),
        ("lr", 0.0, "lr must be a positive number"),
        ("lr", float("nan"), "lr must be a positive number"),
        ("temperature", -0.1, "temperature must be a positive number"),
        ("batch_size", 1, "batch_size must be at least 2"),
        ("optimizer", "adam", "unknown optimizer 'adam'; expected one of: adamw, sgd, lars"),
        ("device", "tpu", "device must be"),
        ("weight_decay", -1.0, "weight_decay must be >= 0"),
        ("num_workers", -1, "num_workers must be >= 0, got -1"),
        ("schedule", "linear", "unknown schedule 'linear'; expected one of: cosine, constant"),
        ("amp", "fp8", "unknown amp 'fp8'; expected one of: auto, off, bf16, fp16"),
        ("view_options", [], "view_options must be a table/dict"),
        ("chunk_size", 1.5, "chunk_size must be a positive integer"),
    ],
)
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        check_config(TrainConfig(**{field: value}))


def test_unknown_method_option_lists_the_accepted_ones():
    with pytest.raises(ValueError, match="has no option.*'widthh'.*accepts: .*hidden_dim"):
        resolve_config(TrainConfig(method_options={"widthh": 3}), build_dataset("toy"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('seed = "abc"', "seed must be an integer, got 'abc'"),
        ('eval = "no"', "eval must be true or false, got 'no'"),
        ("method_options = 3", "method_options must be a table/dict, got 3"),
        ("steps = 2.5", "steps must be a positive integer, got 2.5"),
        ('lr = "1e-3"', "lr must be a positive number, got '1e-3'"),
        ("warmup_epochs = inf", "warmup_epochs must be a finite number >= 0, got inf"),
        ("warmup_steps = true", "warmup_steps must be >= 0, got True"),
        ('input_shape = ["a"]', "input_shape must be a list of integers"),
        ("device = 0", "device must be auto, cpu, cuda, cuda:N or mps, got 0"),
        ("backbone = 3", r"backbone must be a string \(or unset\), got 3"),
    ],
)
def test_toml_values_of_the_wrong_type_name_the_key(tmp_path, line, message):
    path = tmp_path / "r.toml"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=f"^--config {path}: {message}"):
        load_toml(path)


def test_toml_recipe(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('data = "toy"\nsteps = 5\n[backbone_options]\nhidden_dims = [4]\n')
    assert load_toml(path) == {"data": "toy", "steps": 5, "backbone_options": {"hidden_dims": [4]}}
    path.write_text("stepz = 5\n")
    with pytest.raises(ValueError, match="unknown key.*stepz"):
        load_toml(path)
    path.write_text("steps = = 5\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_toml(path)
    with pytest.raises(ValueError, match="no such file"):
        load_toml(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("method", "data", "pipeline"),
    [
        ("simclr", "shapes", "batched"),
        ("byol", "shapes", "batched"),
        ("dino", "digits", "batched"),  # multi-crop exists batched at any size
        ("simclr", "digits", "per_sample"),  # the small-image recipe is per sample
        ("clip", "shapes", "per_sample"),
        ("simclr", "toy", "per_sample"),
    ],
)
def test_auto_view_pipeline_resolves_to_the_one_used(method, data, pipeline):
    config = resolve_config(TrainConfig(method=method, data=data, out="x"), build_dataset(data))
    assert config.view_pipeline == pipeline


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_built_in_recipe_builds_its_method(recipe):
    config = TrainConfig.from_dict(load_recipe(recipe), source=recipe)
    check_config(config)
    method = build_method(resolve_config(config, build_dataset(config.data)))
    assert type(method) is METHODS[config.method]
    assert recipe == "seed" or recipe.split("-")[0] == config.method  # the name says it


def test_every_field_is_declared_once_with_its_help():
    declared = settings()
    assert list(declared) == [f for f in TrainConfig.__dataclass_fields__]
    assert all(spec.help for spec in declared.values())
    resumable = {"eval", "eval_every", "progress", "tsne", "num_workers", "eval_batch_size"}
    resumable |= {"dist_timeout", "logger"}
    assert resumable_fields() == resumable
    flags = {name for name, spec in declared.items() if spec.flag is not None}
    assert {"method", "data", "lr", "eval", "progress", "sync_bn"} <= flags
    assert not flags & {"method_options", "input_shape", "warmup_steps"}  # --set, data, recipes


def test_the_config_module_does_not_import_torch():
    code = (
        "import sys; import contrastkit.training.config, contrastkit.cli; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""Built-in recipes: the settings a method trains with on a dataset unless the user says otherwise.

A recipe is a TOML file of ``TrainConfig`` fields shipped in ``contrastkit/training/recipes/``:
``<method>-<data>.toml`` (``moco-shapes``), or ``<method>-<backbone>-<data>.toml`` for a
backbone other than the data's usual one (``dino-vit-shapes``, picked by ``--backbone vit``).
Its opening comment says how and why it differs from the paper. ``--preset`` chooses:

- ``auto`` (default): the recipe of (method, data) when there is one; the data name is the part
  of ``--data`` before ``:`` (``folder:PATH`` and ``cifar10:PATH`` have none);
- ``paper``: no recipe, the papers' settings (and the dataset's ``DATA_DEFAULTS``);
- ``seed``: ``seed.toml``, the blog's toy experiment (SimCLR on toy with a 2-8 ReLU encoder),
  the documented case that cannot separate the clusters on h.

Precedence, lowest first: the recipe, the user's ``--config`` TOML, flags and ``--set``. The
merged config records ``preset`` and ``recipe`` (the name, or ``"none"``), so config.json and
``--resume`` rebuild the same run without applying a recipe twice.
"""

from __future__ import annotations

import logging
from dataclasses import MISSING, fields
from importlib import resources
from typing import Any

from contrastkit.training.config import PRESETS, TrainConfig
from contrastkit.training.files import load_toml

logger = logging.getLogger(__name__)

NO_RECIPE = "none"
SEED_RECIPE = "seed"
RECIPE_DATA: tuple[str, ...] = ("toy", "digits", "shapes")  # every method has a recipe for each
# (method, data) pairs that cannot train at all, and why (the lookup says so before anything runs)
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("clip", "toy"): "CLIP needs image-caption pairs and toy is 2-D points without captions",
    ("clip", "digits"): "CLIP needs image-caption pairs and digits has no captions",
    ("dino", "toy"): "DINO's multi-crop views need images and toy is 2-D points",
}
_CAPTIONED = "use --data shapes (captioned scenes) or pairs:CSV"
# each pair is one setting: the user's half replaces both halves of the recipe's
_ONE_SETTING = (("epochs", "steps"), ("warmup_epochs", "warmup_steps"))
_OPTION_DICTS = ("method_options", "backbone_options", "view_options")


def recipe_names() -> list[str]:
    """Return the names of the built-in recipes (file stems), sorted."""
    folder = resources.files("contrastkit.training") / "recipes"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_recipe(name: str) -> dict[str, Any]:
    """Return the fields of built-in recipe ``name`` (``"moco-shapes"``).

    Raises:
        ValueError: there is no such recipe (the known ones are listed).
    """
    if name not in recipe_names():
        raise ValueError(f"no built-in recipe {name!r}; known: {', '.join(recipe_names())}")
    with resources.as_file(resources.files("contrastkit.training") / "recipes") as folder:
        return load_toml(folder / f"{name}.toml")


def find_recipe(method: str, data: str, backbone: str | None = None) -> str | None:
    """Return the name of the recipe of ``method`` on ``data`` (None: the data has none).

    Args:
        method: a name of ``METHODS``.
        data: the ``--data`` value; only its name before ``:`` counts.
        backbone: the backbone the user chose, if any: ``<method>-<backbone>-<data>`` wins.

    Raises:
        ValueError: the method cannot train on that data at all (``UNSUPPORTED`` says why).
    """
    name = data.partition(":")[0]
    known = recipe_names()
    if backbone is not None and f"{method}-{backbone}-{name}" in known:
        return f"{method}-{backbone}-{name}"
    if (method, name) in UNSUPPORTED:
        hint = _CAPTIONED if method == "clip" else "try --method simclr"
        raise ValueError(
            f"--method {method} cannot train on --data {name}: {UNSUPPORTED[method, name]}; {hint}"
        )
    return f"{method}-{name}" if f"{method}-{name}" in known else None


def merge(recipe: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Return ``given`` (the user's fields) over ``recipe``: what the user gave always wins.

    The option dicts merge key by key. A run length or warm-up the user gives in either unit
    replaces the recipe's in both; a backbone other than the recipe's drops the recipe's
    backbone options; a ``temperature`` method option drops the recipe's ``temperature``.
    """
    given = {k: v for k, v in given.items() if v is not None}
    out = {k: v for k, v in recipe.items() if k not in given}
    for pair in _ONE_SETTING:
        if any(key in given for key in pair):
            for key in pair:
                out.pop(key, None)
    user_options = given.get("method_options", {})
    if "temperature" in user_options:
        out.pop("temperature", None)
    backbone = given.get("backbone", recipe.get("backbone"))
    same_backbone = backbone == recipe.get("backbone")
    for key in _OPTION_DICTS:
        base = recipe.get(key, {}) if key != "backbone_options" or same_backbone else {}
        out[key] = {**base, **given.get(key, {})}
    return {**given, **out, **{k: out[k] for k in _OPTION_DICTS}}


def default_of(name: str) -> Any:
    """Return the declared default of ``TrainConfig`` field ``name``."""
    field = next(f for f in fields(TrainConfig) if f.name == name)
    return field.default_factory() if field.default is MISSING else field.default


def with_recipe(given: dict[str, Any]) -> dict[str, Any]:
    """Return the fields of a run: the user's ``given`` over the recipe their preset picks.

    Args:
        given: the fields the user set (``--config`` TOML, flags, ``--set``); a field that is
            absent or None is unset. ``preset`` (default ``auto``) chooses the recipe.

    Returns:
        the merged fields, with ``recipe`` set to the recipe's name or ``"none"`` (``announce``
        logs it).

    Raises:
        ValueError: an unknown preset; a method that cannot train on the data; ``--preset
            seed`` with another method or data than the toy experiment's.
    """
    preset = given.get("preset") or default_of("preset")
    if preset not in PRESETS:
        raise ValueError(f"--preset {preset!r}: expected one of {', '.join(PRESETS)}")
    if preset == "paper":
        return {**given, "recipe": NO_RECIPE}
    method = given.get("method") or default_of("method")
    data = given.get("data") or default_of("data")
    name = SEED_RECIPE if preset == "seed" else find_recipe(method, data, given.get("backbone"))
    if name is None:
        return {**given, "recipe": NO_RECIPE}
    recipe = load_recipe(name)
    merged = merge(recipe, given)
    if preset == "seed" and (merged["method"], merged["data"]) != (
        recipe["method"],
        recipe["data"],
    ):
        raise ValueError(
            f"--preset seed is the toy experiment ({recipe['method']} on {recipe['data']}); "
            "drop --method/--data, or use --preset auto"
        )
    return {**merged, "preset": preset, "recipe": name}


def announce(config: TrainConfig) -> None:
    """Log the one line naming the built-in recipe a run uses (nothing without one).

    The trainer calls it once every check passed, so a refused run prints only its error.
    """
    name, preset = config.recipe, config.preset
    if name in (None, NO_RECIPE):
        return
    if preset == "seed":
        logger.info(
            "recipe: seed (built in: the blog's toy settings, which cannot separate the clusters "
            "on h; --preset auto for simclr-toy)"
        )
    else:
        logger.info("recipe: %s (built in; --preset paper for the paper's settings)", name)


def given_fields(config: TrainConfig) -> dict[str, Any]:
    """Return the fields of ``config`` that differ from their declared defaults (set by a user)."""
    return {
        f.name: getattr(config, f.name)
        for f in fields(TrainConfig)
        if getattr(config, f.name) != default_of(f.name)
    }


def apply_preset(config: TrainConfig) -> TrainConfig:
    """Return ``config`` with its preset's recipe under it (unchanged once applied).

    For the Python API (``contrastkit.fit``, ``train(TrainConfig(...))``): a field left at its
    declared default counts as unset. A config that already records its ``recipe``, or was
    resolved (config.json), is returned as it is.
    """
    if config.recipe is not None or config.input_shape is not None:
        return config
    return TrainConfig.from_dict(with_recipe(given_fields(config)), source="recipe")


__all__ = [
    "NO_RECIPE",
    "RECIPE_DATA",
    "UNSUPPORTED",
    "announce",
    "apply_preset",
    "find_recipe",
    "given_fields",
    "load_recipe",
    "merge",
    "recipe_names",
    "with_recipe",
]

"""Filling a config's unset fields from its dataset and method, before anything is built.

``resolve_config`` turns what the user gave (``None`` meaning "the dataset's default") into the
complete config that ``config.json`` stores: run length, batch size, learning rate, backbone and
its options from ``DATA_DEFAULTS`` (or ``GLOBAL_DEFAULTS``), the method's options (the dataset's
recipe, what the data implies, then the user's), the sample shape and the view pipeline used.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from pathlib import Path
from typing import Any

from contrastkit.methods import METHODS
from contrastkit.training.config import (
    DATA_DEFAULTS,
    DEFAULT_BACKBONE_BY_KIND,
    GLOBAL_DEFAULTS,
    TrainConfig,
)
from contrastkit.transforms import has_batched_views


def accepted_options(method: str) -> set[str] | None:
    """Return the keyword arguments the method's constructor takes (None: it takes any)."""
    params = inspect.signature(METHODS[method].__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {name for name in params if name not in ("self", "backbone")}


def default_out(method: str, data: str) -> str:
    """Return a fresh ``runs/<method>-<data>-<timestamp>`` folder name (suffixed if taken)."""
    stem = f"runs/{method}-{data.partition(':')[0]}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = stem, 1
    while Path(candidate).exists():
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def _fill_defaults(values: dict[str, Any], data_defaults: dict[str, Any], kind: str) -> None:
    """Fill run length, batch size, lr, decay, logging and backbone in place."""
    if values["epochs"] is None and values["steps"] is None:  # epochs/steps are one setting
        values["steps"] = data_defaults.get("steps")
        if values["steps"] is None:
            values["epochs"] = data_defaults.get("epochs", GLOBAL_DEFAULTS["epochs"])
    for key in ("batch_size", "lr", "weight_decay", "log_every"):
        if values[key] is None:
            values[key] = data_defaults.get(key, GLOBAL_DEFAULTS[key])
    if values["warmup_steps"] is None and values["warmup_epochs"] is None:
        values["warmup_steps"] = data_defaults.get("warmup_steps")
        if values["warmup_steps"] is None:
            values["warmup_epochs"] = data_defaults.get(
                "warmup_epochs", GLOBAL_DEFAULTS["warmup_epochs"]
            )
    if values["backbone"] is None:
        values["backbone"] = data_defaults.get(
            "backbone", DEFAULT_BACKBONE_BY_KIND.get(kind, "cnn")
        )
    if values["backbone"] == data_defaults.get("backbone"):
        values["backbone_options"] = {
            **data_defaults.get("backbone_options", {}),
            **values["backbone_options"],
        }


def _method_options(config: TrainConfig, data_defaults: dict[str, Any], dataset) -> dict:
    """Return the method's options: the dataset's recipe, then the data's, then the user's.

    Raises:
        ValueError: the method does not take an option or a temperature that was given.
    """
    accepted = accepted_options(config.method)
    user_options = dict(config.method_options)
    if config.temperature is not None:
        user_options["temperature"] = config.temperature
    if accepted is not None:
        unknown = sorted(set(user_options) - accepted)
        if unknown:
            raise ValueError(
                f"method {config.method!r} has no option(s) {unknown}"
                + (" (--temperature)" if "temperature" in unknown else "")
                + f"; it accepts: {', '.join(sorted(accepted)) or 'none'}"
            )
    recipe_options = {
        k: v
        for k, v in data_defaults.get("method_options", {}).items()
        if accepted is None or k in accepted
    }
    from_data = METHODS[config.method].options_from_data(dataset)
    return {**recipe_options, **from_data, **user_options}


def resolve_config(config: TrainConfig, dataset) -> TrainConfig:
    """Return a copy with every ``None`` default filled from the dataset and the method.

    Args:
        config: as given by the user (already passed ``check_config``).
        dataset: the training data (its name picks ``DATA_DEFAULTS``; its shape is recorded).

    Raises:
        ValueError: the method does not take an option or a temperature that was given.
    """
    data_defaults = DATA_DEFAULTS.get(config.data.partition(":")[0], {})
    values = config.to_dict()
    _fill_defaults(values, data_defaults, getattr(dataset, "kind", "images"))
    values["method_options"] = _method_options(config, data_defaults, dataset)
    values["input_shape"] = [int(s) for s in dataset.input_shape]
    if values["view_pipeline"] == "auto":  # config.json records the pipeline that was used
        batched = has_batched_views(METHODS[config.method].view_recipe, dataset)
        values["view_pipeline"] = "batched" if batched else "per_sample"
    if values["out"] is None:
        values["out"] = default_out(config.method, config.data)
    return dataclasses.replace(config, **values)


__all__ = ["accepted_options", "default_out", "resolve_config"]

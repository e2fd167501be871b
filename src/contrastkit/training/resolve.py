"""Filling a config's unset fields from its dataset and method, before anything is built.

``resolve_config`` turns what the user gave (``None`` meaning "the dataset's default") into the
complete config that ``config.json`` stores: first the built-in recipe its ``--preset`` picks
(``contrastkit.training.presets``, under what the user set), then run length, batch size,
learning rate, backbone and its options from ``DATA_DEFAULTS`` (or ``GLOBAL_DEFAULTS``), the
method's options (the dataset's defaults, what the data implies, then the user's), the sample
shape, the view pipeline used, the number format (``--amp``, ``--memory-format``: what
this machine runs fastest) and, for photos (``folder:``, ``shards:``), their size, the
loader's worker processes and where they are decoded.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from contrastkit import distributed
from contrastkit.methods import METHODS
from contrastkit.training.config import (
    DATA_DEFAULTS,
    DEFAULT_BACKBONE_BY_KIND,
    GLOBAL_DEFAULTS,
    MAX_DEFAULT_WORKERS,
    TrainConfig,
)
from contrastkit.training.precision import resolve_precision
from contrastkit.training.presets import apply_preset
from contrastkit.transforms import has_batched_views

logger = logging.getLogger(__name__)


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


def fitting_batch_size(default: int, num_samples: int, world_size: int = 1) -> int:
    """Return the default batch, or the largest that fits a smaller dataset.

    A step draws ``batch_size`` distinct samples (the last partial batch of an epoch is
    dropped), split evenly over ``world_size`` processes, and every sample needs another one as
    its negative: the result is at most ``num_samples``, a multiple of ``world_size`` and >= 2
    where the data allows it (otherwise the trainer's own check names the problem).
    """
    if default <= num_samples:
        return default
    fitted = num_samples // world_size * world_size
    return fitted if fitted >= 2 else default


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


def _cores() -> int:
    """Return the CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _training_device(name: str) -> torch.device:
    """Return the device ``--device name`` trains on ("auto": CUDA when present)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _fill_loading(values: dict[str, Any], dataset) -> None:
    """Fill ``num_workers``, ``decode`` and ``image_size`` from the data and the machine.

    Photos (``dataset.full_resolution``) get one worker per core this process has (the cores
    shared among the torchrun processes), at most ``MAX_DEFAULT_WORKERS``, and decoding on the
    device when it is CUDA; data held in memory gets no workers.
    """
    photos = getattr(dataset, "full_resolution", False)
    if values["num_workers"] is None:
        share = max(1, _cores() // distributed.world_size())
        values["num_workers"] = min(MAX_DEFAULT_WORKERS, share) if photos else 0
    if values["decode"] == "auto":
        cuda = _training_device(values["device"]).type == "cuda"
        values["decode"] = "device" if photos and cuda else "workers"
    if photos and getattr(dataset, "image_size", None):  # the folder's and shards' own
        values["image_size"] = int(dataset.image_size)


def _fill_precision(values: dict[str, Any], dataset) -> None:
    """Replace ``--amp auto`` and ``--memory-format auto`` by what the device runs fastest."""
    device = _training_device(values["device"])
    images = getattr(dataset, "kind", "images") == "images"
    values["amp"], values["memory_format"] = resolve_precision(
        values["amp"], values["memory_format"], device, images
    )


def resolve_config(config: TrainConfig, dataset) -> TrainConfig:
    """Return a copy with every ``None`` default filled from the dataset and the method.

    Args:
        config: as given by the user (already passed ``check_config``).
        dataset: the training data (its name picks ``DATA_DEFAULTS``; its shape is recorded).

    Raises:
        ValueError: the method does not take an option or a temperature that was given, or
            cannot train on the data.
    """
    config = apply_preset(config)  # the recipe of (method, data), unless applied already
    data_defaults = DATA_DEFAULTS.get(config.data.partition(":")[0], {})
    values = config.to_dict()
    _fill_defaults(values, data_defaults, getattr(dataset, "kind", "images"))
    if config.batch_size is None:  # not given: shrink the default to what the data holds
        fitted = fitting_batch_size(values["batch_size"], len(dataset), distributed.world_size())
        if fitted != values["batch_size"]:
            logger.info(
                "batch size %d instead of the default %d: the training split of %s holds only "
                "%d samples (pass --batch-size to choose)",
                fitted,
                values["batch_size"],
                config.data,
                len(dataset),
            )
            values["batch_size"] = fitted
    values["method_options"] = _method_options(config, data_defaults, dataset)
    shape = [int(s) for s in dataset.input_shape]
    if values["input_shape"] is not None and list(values["input_shape"]) != shape:
        raise ValueError(
            f"input_shape {list(values['input_shape'])} does not match the samples of "
            f"{config.data} ({shape}); leave it unset: it is read from the data"
        )
    values["input_shape"] = shape
    _fill_loading(values, dataset)
    _fill_precision(values, dataset)
    if values["view_pipeline"] == "auto":  # config.json records the pipeline that was used
        batched = has_batched_views(METHODS[config.method].view_recipe, dataset)
        values["view_pipeline"] = "batched" if batched else "per_sample"
    if values["out"] is None:
        values["out"] = default_out(config.method, config.data)
    return dataclasses.replace(config, **values)


__all__ = ["accepted_options", "default_out", "fitting_batch_size", "resolve_config"]

"""The training configuration: one JSON-serialisable dataclass, filled from defaults and recipes.

Precedence, lowest first: the global defaults below, the small-data settings of the dataset
(``DATA_DEFAULTS``), a TOML recipe (``configs/*.toml``, keys are ``TrainConfig`` fields), explicit
command-line flags. Fields left ``None`` mean "the dataset's default"; ``resolve_config`` fills
them and the resolved config is what ``config.json`` stores, so a run can always be rebuilt.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from contrastkit.methods import METHODS
from contrastkit.training.optim import OPTIMIZERS, SCHEDULES
from contrastkit.transforms import has_batched_views

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

AMP_MODES: tuple[str, ...] = ("auto", "off", "bf16", "fp16")
VIEW_PIPELINES: tuple[str, ...] = ("auto", "batched", "per_sample")

# Used when neither the dataset nor the user says otherwise.
GLOBAL_DEFAULTS: dict[str, Any] = {
    "epochs": 100,
    "batch_size": 256,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "warmup_epochs": 10.0,
    "log_every": 10,
}

# Small-data settings per dataset. ``method_options`` entries are applied only to methods whose
# constructor accepts them. The toy settings are the classic toy experiment's.
DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "toy": {
        "steps": 100,
        "batch_size": 16,
        "lr": 1e-2,
        "weight_decay": 0.0,
        "warmup_steps": 0,
        "backbone": "mlp",
        "backbone_options": {"hidden_dims": [8], "final_relu": True},
        "method_options": {"hidden_dim": 8, "out_dim": 4},
        "log_every": 1,
    },
    "digits": {
        "epochs": 40,
        "batch_size": 256,
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "warmup_epochs": 4.0,
        "backbone": "cnn",
        "backbone_options": {"width": 32},
        "method_options": {"hidden_dim": 512, "out_dim": 128},
    },
}

DEFAULT_BACKBONE_BY_KIND = {"points": "mlp", "images": "cnn"}


@dataclass
class TrainConfig:
    """Everything that defines a training run; ``None`` means "the dataset's default".

    Attributes:
        method: a key of ``contrastkit.methods.METHODS``.
        data: dataset spec, ``NAME`` or ``NAME:PATH``.
        backbone: a name of ``contrastkit.models.backbones.BACKBONES`` (None: mlp for points, cnn
        for
            small images).
        epochs: passes over the data; ignored when ``steps`` is set.
        steps: optimizer steps in total (wins over ``epochs``).
        batch_size: samples per step over all processes (the global batch; under torchrun each
            of the W processes takes batch_size / W of them).
        lr: peak learning rate (after warmup).
        weight_decay: decoupled (AdamW) or L2 (SGD, LARS) decay of weights with ndim > 1.
        optimizer: "adamw", "sgd" or "lars".
        momentum: for sgd and lars.
        warmup_epochs: linear warmup length in epochs; ``warmup_steps`` wins when set.
        warmup_steps: linear warmup length in steps.
        schedule: "cosine" or "constant" after warmup.
        min_lr_ratio: final learning rate of the cosine schedule, as a fraction of ``lr``.
        clip_grad: clip the global gradient norm to this value (None: no clipping).
        amp: "auto" (bf16 or fp16 autocast on CUDA, off on CPU), "off", "bf16", "fp16".
        temperature: the method's temperature (None: the method's default).
        method_options: keyword arguments of the method's constructor.
        backbone_options: keyword arguments of ``build_backbone``.
        view_options: keyword arguments of the view recipe (``build_view_fn``).
        view_pipeline: "batched" (views of the whole batch at once on the training device;
            image recipes only), "per_sample" (torchvision v2, one image at a time, in the
            loader) or "auto" (batched where it exists).
        seed: fixes initialisation, data order and augmentation.
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:N".
        out: run folder (None: ``runs/<method>-<data>-<timestamp>``).
        log_every: write a metrics line every this many steps (and at the first and last).
        checkpoint_every: checkpoint every this many steps (None: at every epoch end).
        eval: evaluate the encoder after training.
        tsne: also draw a t-SNE map (slower than PCA).
        progress: show a progress bar when stderr is a terminal.
        chunk_size: gradient-caching chunk (None: whole batch at once).
        backend: torch.distributed backend under torchrun: "auto" (nccl with GPUs, else gloo),
            "gloo" or "nccl"; ignored on a single process.
        sync_bn: under torchrun, compute BatchNorm statistics over the global batch.
        num_workers: DataLoader worker processes making views.
        eval_batch_size: batch size when embedding datasets for evaluation.
        input_shape: shape of one sample, filled in from the data (rebuilds the backbone).
    """

    method: str = "simclr"
    data: str = "digits"
    backbone: str | None = None
    epochs: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: str = "adamw"
    momentum: float = 0.9
    warmup_epochs: float | None = None
    warmup_steps: int | None = None
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    clip_grad: float | None = None
    amp: str = "auto"
    temperature: float | None = None
    method_options: dict[str, Any] = field(default_factory=dict)
    backbone_options: dict[str, Any] = field(default_factory=dict)
    view_options: dict[str, Any] = field(default_factory=dict)
    view_pipeline: str = "auto"
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    log_every: int | None = None
    checkpoint_every: int | None = None
    eval: bool = True
    tsne: bool = False
    progress: bool = True
    chunk_size: int | None = None
    backend: str = "auto"
    sync_bn: bool = False
    num_workers: int = 0
    eval_batch_size: int = 512
    input_shape: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build a config from a dict of field values.

        Raises:
            ValueError: a key that is not a field (the message lists the valid ones).
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(
                f"{source}: unknown key(s) {unknown}; valid keys: {', '.join(sorted(names))}"
            )
        return cls(**values)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML recipe: a table of ``TrainConfig`` fields (sub-tables for the option dicts).

    Raises:
        ValueError: the file is missing, is not valid TOML, or has unknown keys.
    """
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError as err:
        raise ValueError(f"--config {path}: no such file") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"--config {path}: not valid TOML ({err})") from err
    TrainConfig.from_dict(values, source=f"--config {path}")  # checks the keys
    return values


def _positive(name: str, value: float | None, *, integer: bool = False) -> None:
    if value is None:
        return
    bad = isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    if bad or value <= 0 or (integer and int(value) != value):
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def check_config(config: TrainConfig) -> None:
    """Check every value that can be checked without the data.

    Raises:
        ValueError: naming the field, the value received and what is expected.
    """
    if config.method not in METHODS:
        raise ValueError(
            f"unknown method {config.method!r}; expected one of: {', '.join(sorted(METHODS))}"
        )
    for name in (
        "epochs",
        "steps",
        "log_every",
        "checkpoint_every",
        "eval_batch_size",
        "chunk_size",
    ):
        _positive(name, getattr(config, name), integer=True)
    for name in ("lr", "temperature", "clip_grad"):
        _positive(name, getattr(config, name))
    if config.batch_size is not None:
        _positive("batch_size", config.batch_size, integer=True)
        if config.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (negatives), got {config.batch_size}")
    for name in ("weight_decay", "warmup_epochs", "warmup_steps", "min_lr_ratio", "momentum"):
        value = getattr(config, name)
        if value is not None and not (isinstance(value, int | float) and value >= 0):
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    if config.num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {config.num_workers}")
    choices = {
        "optimizer": OPTIMIZERS,
        "schedule": SCHEDULES,
        "amp": AMP_MODES,
        "view_pipeline": VIEW_PIPELINES,
    }
    for name, valid in choices.items():
        if getattr(config, name) not in valid:
            raise ValueError(
                f"unknown {name} {getattr(config, name)!r}; expected one of: {', '.join(valid)}"
            )
    device = config.device
    if not (device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:")):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    for name in ("method_options", "backbone_options", "view_options"):
        if not isinstance(getattr(config, name), dict):
            raise ValueError(f"{name} must be a table/dict, got {getattr(config, name)!r}")


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


def resolve_config(config: TrainConfig, dataset) -> TrainConfig:
    """Return a copy with every ``None`` default filled from the dataset and the method.

    Args:
        config: as given by the user (already passed ``check_config``).
        dataset: the training data (its name picks ``DATA_DEFAULTS``; its shape is recorded).

    Raises:
        ValueError: the method does not take an option or a temperature that was given.
    """
    name = config.data.partition(":")[0]
    data_defaults = DATA_DEFAULTS.get(name, {})
    values = config.to_dict()
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
    kind = getattr(dataset, "kind", "images")
    if values["backbone"] is None:
        values["backbone"] = data_defaults.get(
            "backbone", DEFAULT_BACKBONE_BY_KIND.get(kind, "cnn")
        )
    if values["backbone"] == data_defaults.get("backbone"):
        values["backbone_options"] = {
            **data_defaults.get("backbone_options", {}),
            **values["backbone_options"],
        }

    accepted = accepted_options(config.method)
    user_options = dict(values["method_options"])
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
    values["method_options"] = {**recipe_options, **from_data, **user_options}
    values["input_shape"] = [int(s) for s in dataset.input_shape]
    if values["view_pipeline"] == "auto":  # config.json records the pipeline that was used
        recipe = METHODS[config.method].view_recipe
        batched = has_batched_views(recipe, dataset)
        values["view_pipeline"] = "batched" if batched else "per_sample"
    if values["out"] is None:
        values["out"] = default_out(config.method, config.data)
    return dataclasses.replace(config, **values)


__all__ = [
    "AMP_MODES",
    "VIEW_PIPELINES",
    "DATA_DEFAULTS",
    "GLOBAL_DEFAULTS",
    "TrainConfig",
    "accepted_options",
    "check_config",
    "load_toml",
    "resolve_config",
]

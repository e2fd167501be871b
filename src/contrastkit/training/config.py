"""The training configuration: one JSON-serialisable dataclass whose fields say everything once.

Each field of ``TrainConfig`` is declared with ``setting(...)``: its default, its help text, its
check, its command-line flag (if any) and whether ``--resume`` may change it. The command line
(``contrastkit.cli.train``), ``check_config`` and the resume whitelist are all read from there.

Precedence, lowest first: the global defaults below, the small-data settings of the dataset
(``DATA_DEFAULTS``), a TOML recipe (``configs/*.toml``, keys are ``TrainConfig`` fields), explicit
command-line flags. Fields left ``None`` mean "the dataset's default";
``contrastkit.training.resolve.resolve_config`` fills them and the resolved config is what
``config.json`` stores, so a run can always be rebuilt.

This module imports neither torch nor the methods (the method names are looked up when a config
is checked), so that the command line builds its parser in a blink.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from contrastkit.training.checks import (
    Check,
    batch_of_pairs,
    device_name,
    method_names,
    non_negative,
    of_type,
    one_of,
    positive,
    positive_int,
)

AMP_MODES: tuple[str, ...] = ("auto", "off", "bf16", "fp16")
VIEW_PIPELINES: tuple[str, ...] = ("auto", "batched", "per_sample")
OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd", "lars")
SCHEDULES: tuple[str, ...] = ("cosine", "constant")

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

# ---------------------------------------------------------------------------------------------
# Declaring a field once


@dataclass(frozen=True)
class Flag:
    """How a field appears on the command line of ``contrastkit train``.

    Attributes:
        name: the flag (None: ``--field-name``).
        sets: for a switch, the value it gives the field (``--no-eval`` sets ``eval`` to False);
            None for a flag that takes a value.
        help: the switch's own help text (None: the field's).
        default: the "(default: ...)" text where the defaults tables cannot say it.
        replaces: the other half of the same setting: a recipe's value for it is dropped when
            only this flag is given (``--epochs`` beats a recipe's ``steps``).
    """

    name: str | None = None
    sets: bool | None = None
    help: str | None = None
    default: str | None = None
    replaces: str | None = None


@dataclass(frozen=True)
class Setting:
    """What ``TrainConfig`` knows of a field besides its type and default (its metadata).

    Attributes:
        help: what the field means; ``{default}`` marks where ``--help`` shows the default
            (at the end when absent), which the CLI derives from the defaults tables.
        check: ``check(name, value)`` raises ValueError for a bad value (``checks``).
        flag: the field's command-line flag (None: recipes and the Python API only).
        resumable: ``--resume`` may change it, because it does not change the result.
    """

    help: str
    check: Check | None = None
    flag: Flag | None = None
    resumable: bool = False


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    check: Check | None = None,
    flag: Flag | bool = False,
    resumable: bool = False,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """Declare a ``TrainConfig`` field: its default (or ``factory``), help, check and flag."""
    meta = {"setting": Setting(help, check, Flag() if flag is True else flag or None, resumable)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that defines a training run; ``None`` means "the dataset's default".

    Every field's meaning is its ``help`` (``settings()``), which ``contrastkit train --help``
    prints next to its default.
    """

    method: str = setting(
        "simclr", "simclr, moco, byol, ...", check=one_of(method_names), flag=True
    )
    data: str = setting(
        "digits", "NAME or NAME:PATH: toy (2-D clusters), digits (8x8), ...", flag=True
    )
    backbone: str | None = setting(
        None, "encoder: mlp, cnn, resnet18, resnet50, vit, timm:NAME", flag=True
    )
    epochs: int | None = setting(
        None,
        "passes over the data, ignored when --steps is set ({default}). Contrastive methods keep "
        "improving long after the loss flattens; train longer before trying bigger models",
        check=positive_int,
        flag=Flag(replaces="steps"),
    )
    steps: int | None = setting(
        None,
        "optimizer steps in total; wins over --epochs",
        check=positive_int,
        flag=Flag(replaces="epochs"),
    )
    batch_size: int | None = setting(
        None,
        "samples per step over all processes ({default}); under torchrun each of the W processes "
        "takes batch_size / W. Each sample's other 2N-2 views are its negatives, so larger "
        "batches tighten the InfoNCE bound log(2N-1)",
        check=batch_of_pairs,
        flag=True,
    )
    lr: float | None = setting(
        None,
        "peak learning rate after warmup, with AdamW ({default}). With --optimizer lars use "
        "about 0.3 x batch/256 (SimCLR)",
        check=positive,
        flag=True,
    )
    weight_decay: float | None = setting(
        None,
        "decoupled (AdamW) or L2 (SGD, LARS) decay of weights with ndim > 1",
        check=non_negative,
        flag=True,
    )
    optimizer: str = setting(
        "adamw",
        "adamw (small data), sgd, lars (large batches)",
        check=one_of(OPTIMIZERS),
        flag=True,
    )
    momentum: float = setting(0.9, "momentum of sgd and lars", check=non_negative)
    warmup_epochs: float | None = setting(
        None,
        "linear warmup, in epochs",
        check=non_negative,
        flag=Flag(replaces="warmup_steps"),
    )
    warmup_steps: int | None = setting(
        None, "linear warmup, in steps (wins over warmup_epochs)", check=non_negative
    )
    schedule: str = setting("cosine", "cosine or constant after warmup", check=one_of(SCHEDULES))
    min_lr_ratio: float = setting(
        0.0, "final learning rate of the cosine schedule, as a fraction of lr", check=non_negative
    )
    clip_grad: float | None = setting(
        None,
        "clip the global gradient norm to this value",
        check=positive,
        flag=Flag(default="off; 3.0 for dino, as in its paper"),
    )
    amp: str = setting(
        "auto",
        "auto (bf16/fp16 on CUDA, off on CPU), off, bf16, fp16",
        check=one_of(AMP_MODES),
        flag=True,
    )
    temperature: float | None = setting(
        None,
        "the method's temperature ({default}). Lower values weigh hard negatives more; below 0.1 "
        "training is often unstable",
        check=positive,
        flag=Flag(default="the paper's, 0.5 for SimCLR"),
    )
    method_options: dict[str, Any] = setting(
        help="keyword arguments of the method's constructor", factory=dict
    )
    backbone_options: dict[str, Any] = setting(help="keyword args of build_backbone", factory=dict)
    view_options: dict[str, Any] = setting(help="keyword args of the view recipe", factory=dict)
    view_pipeline: str = setting(
        "auto",
        "auto (batched for image recipes, per_sample otherwise), batched (views of the whole "
        "batch at once on --device, 10x cheaper on a CPU), per_sample (torchvision v2, one image "
        "at a time, in the loader)",
        check=one_of(VIEW_PIPELINES),
        flag=True,
    )
    seed: int = setting(0, "fixes init, data order and views", flag=True)
    device: str = setting("auto", "auto, cpu, cuda, cuda:N, mps", check=device_name, flag=True)
    out: str | None = setting(
        None, "run folder", flag=Flag(default="runs/<method>-<data>-<timestamp>")
    )
    log_every: int | None = setting(
        None, "steps between metrics lines, and the first and last", check=positive_int, flag=True
    )
    checkpoint_every: int | None = setting(
        None, "steps between checkpoints", check=positive_int, flag=Flag(default="every epoch")
    )
    eval: bool = setting(
        True,
        "evaluate the encoder after training",
        flag=Flag("--no-eval", sets=False, help="skip the evaluation after training"),
        resumable=True,
    )
    tsne: bool = setting(
        False, "also draw a t-SNE map of h (slower than PCA)", flag=Flag(sets=True), resumable=True
    )
    progress: bool = setting(
        True,
        "show a progress bar when stderr is a terminal",
        flag=Flag("--quiet", sets=False, help="no progress bar or log lines, only the results"),
        resumable=True,
    )
    chunk_size: int | None = setting(
        None,
        "gradient caching: embed at most this many samples at once, then backpropagate chunk by "
        "chunk, for batches larger than memory with the same gradient",
        check=positive_int,
        flag=Flag(default="off; simclr and clip"),
    )
    backend: str = setting(
        "auto",
        "under torchrun: auto (nccl with GPUs, else gloo), gloo, nccl. --batch-size is then the "
        "global batch, split over the processes",
        flag=True,
    )
    dist_timeout: float = setting(
        300.0,
        "under torchrun: seconds a process waits for the others in a collective; a stopped or "
        "dead peer then ends every process with one error",
        check=positive,
        flag=True,
        resumable=True,
    )
    sync_bn: bool = setting(
        False,
        "under torchrun: BatchNorm statistics over the global batch",
        flag=Flag(sets=True, default="per process"),
    )
    num_workers: int = setting(
        0, "data-loading processes", check=non_negative, flag=True, resumable=True
    )
    eval_batch_size: int = setting(
        512, "batch size when embedding datasets for evaluation", check=positive_int, resumable=True
    )
    input_shape: list[int] | None = setting(
        None, "shape of one sample, filled in from the data (rebuilds the backbone)"
    )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build a config from a dict of field values.

        Raises:
            ValueError: a key that is not a field (listing the valid ones), or a wrong type.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(
                f"{source}: unknown key(s) {unknown}; valid keys: {', '.join(sorted(names))}"
            )
        check_values(values, source="" if source == "flags" else f"{source}: ")
        return cls(**values)


def settings() -> dict[str, Setting]:
    """Return every field's ``Setting``, by field name, in declaration order."""
    return {f.name: f.metadata["setting"] for f in fields(TrainConfig)}


def resumable_fields() -> set[str]:
    """Return the fields ``--resume`` may change (those that do not change the result)."""
    return {name for name, s in settings().items() if s.resumable}


def check_config(config: TrainConfig) -> None:
    """Check every value that can be checked without the data, with each field's own check.

    Raises:
        ValueError: naming the field, the value received and what is expected.
    """
    check_values({name: getattr(config, name) for name in settings()})


def check_values(values: dict[str, Any], source: str = "") -> None:
    """Check field values where they enter: each field's own check, then its annotated type.

    Raises:
        ValueError: ``source`` (e.g. ``"--config r.toml: "``), the field, value and expectation.
    """
    hints, specs = typing.get_type_hints(TrainConfig), settings()
    for name, value in values.items():
        try:
            if specs[name].check is not None:
                specs[name].check(name, value)
            of_type(name, value, hints[name])
        except ValueError as err:
            raise ValueError(f"{source}{err}") from None


__all__ = [
    "AMP_MODES",
    "DATA_DEFAULTS",
    "DEFAULT_BACKBONE_BY_KIND",
    "GLOBAL_DEFAULTS",
    "OPTIMIZERS",
    "SCHEDULES",
    "VIEW_PIPELINES",
    "Flag",
    "Setting",
    "TrainConfig",
    "check_config",
    "check_values",
    "resumable_fields",
    "setting",
    "settings",
]

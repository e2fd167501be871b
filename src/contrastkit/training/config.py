"""The training configuration: one JSON-serialisable dataclass whose fields say everything once.

Each field of ``TrainConfig`` is declared with ``setting(...)`` (``training.setting``): its
default, its help text, its check, its command-line flag (if any) and whether ``--resume`` may
change it. The command line
(``contrastkit.cli.train``), ``check_config`` and the resume whitelist are all read from there.

Precedence, lowest first: the global defaults below, the small-data settings of the dataset
(``DATA_DEFAULTS``), the built-in recipe of (method, data) that ``preset`` picks
(``contrastkit.training.presets``), the user's TOML recipe (``--config``, keys are ``TrainConfig``
fields), explicit command-line flags. Fields left ``None`` mean "the dataset's default";
``contrastkit.training.resolve.resolve_config`` fills them and the resolved config is what
``config.json`` stores, so a run can always be rebuilt.

This module imports neither torch nor the methods (the method names are looked up when a config
is checked), so that the command line builds its parser in a blink.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, fields
from typing import Any

from contrastkit.training.checks import (
    batch_of_pairs,
    device_name,
    method_names,
    non_negative,
    of_type,
    one_of,
    positive,
    positive_int,
    seed_value,
)
from contrastkit.training.defaults import DATA_DEFAULTS, DEFAULT_BACKBONE_BY_KIND, GLOBAL_DEFAULTS
from contrastkit.training.setting import Flag, Setting, setting

AMP_MODES: tuple[str, ...] = ("auto", "off", "bf16", "fp16")
VIEW_PIPELINES: tuple[str, ...] = ("auto", "batched", "per_sample")
MEMORY_FORMATS: tuple[str, ...] = ("auto", "channels_last", "contiguous")  # training.precision
DECODE_MODES: tuple[str, ...] = ("auto", "workers", "device")  # training.photo_batches
MAX_DEFAULT_WORKERS = 4  # --num-workers' default for photos: the cores, at most this
OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd", "lars")
SCHEDULES: tuple[str, ...] = ("cosine", "constant")
LOGGERS: tuple[str, ...] = ("jsonl", "tensorboard")
PRESETS: tuple[str, ...] = ("auto", "paper", "seed")  # contrastkit.training.presets
# ``data`` and ``backbone`` of a run given Python objects (``contrastkit.fit``): "python:<class>"
# records what was used; neither the CLI nor ``load_run`` can rebuild it from config.json
PYTHON_OBJECT = "python:"


@dataclass
class TrainConfig:
    """Everything that defines a training run; ``None`` means "the dataset's default".

    Every field's meaning is its ``help`` (``settings()``), which ``contrastkit train --help``
    prints next to its default.
    """

    method: str = setting(
        "simclr",
        "simclr, moco, mocov3, byol, simsiam, dino, barlow_twins, vicreg, clip, or supervised "
        "(the yardstick: the same backbone trained with the labels)",
        check=one_of(method_names),
        flag=True,
    )
    data: str = setting(
        "digits",
        "NAME or NAME:PATH: toy (2-D clusters), digits (8x8), shapes (32x32), shapes64, "
        "folder:PATH (your photos, streamed), shards:DIR (them in tar shards, from contrastkit "
        "shard), cifar10:PATH, cifar100:PATH or pairs:CSV (image-caption pairs, for clip)",
        flag=True,
    )
    image_size: int | None = setting(
        None,
        "side in pixels of the views and evaluation images of folder: and shards: photos; "
        "views are cut from the full-resolution photo, then resized to it ({default})",
        check=positive_int,
        flag=Flag(default="224; the bundled data keep their own size"),
    )
    preset: str = setting(
        "auto",
        "auto: the built-in recipe of the method and data when there is one (printed; your "
        "--config and flags override it); paper: no recipe, the papers' settings; seed: the "
        "blog's toy experiment (simclr on toy, a 2-8 ReLU encoder), which cannot separate the "
        "clusters on h",
        check=one_of(PRESETS),
        flag=True,
    )
    recipe: str | None = setting(
        None,
        'the built-in recipe that --preset applied, or "none" (filled in, so that config.json '
        "and --resume rebuild the same run)",
    )
    download: bool = setting(
        False,
        "let torchvision download cifar10/cifar100 into PATH first (MD5-checked); no other "
        "dataset downloads anything",
        flag=Flag(sets=True),
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
        changeable=True,
    )
    weight_decay: float | None = setting(
        None,
        "decoupled (AdamW) or L2 (SGD, LARS) decay of weights with ndim > 1",
        check=non_negative,
        flag=True,
        changeable=True,
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
        changeable=True,
    )
    amp: str = setting(
        "auto",
        "auto (bf16 on a CPU with avx512_bf16 or AMX and on CUDA where supported, fp16 on older "
        "CUDA, off elsewhere), off (float32), bf16, fp16. The losses stay in float32; the run's "
        "first lines say what was chosen (benchmarks/cpu_step.py measures the speed-up)",
        check=one_of(AMP_MODES),
        flag=True,
    )
    memory_format: str = setting(
        "auto",
        "auto (channels_last when --amp autocasts, contiguous in float32), channels_last "
        "(convolution weights in NHWC), contiguous",
        check=one_of(MEMORY_FORMATS),
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
    seed: int = setting(
        0, "fixes init, data order and views (0 to 2**63 - 1)", check=seed_value, flag=True
    )
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
    eval_every: int | None = setting(
        None,
        "steps between online kNN evaluations of h on the held-out split, and at the last step; "
        "0 turns them off (so does --no-eval, unless this is given). Written to metrics.jsonl "
        "and knn.png",
        check=non_negative,
        flag=Flag(default="4 evenly spaced, the last at the end"),
        resumable=True,
    )
    eval: bool = setting(
        True,
        "evaluate the encoder after training",
        flag=Flag(
            "--no-eval",
            sets=False,
            help="skip every evaluation: after training, and the online kNN unless --eval-every",
        ),
        resumable=True,
    )
    tsne: bool = setting(
        False, "also draw a t-SNE map of h (slower than PCA)", flag=Flag(sets=True), resumable=True
    )
    progress: bool = setting(
        True,
        "show progress on stderr: a bar on a terminal, a line every 5% of the run elsewhere",
        flag=Flag("--quiet", sets=False, help="no progress bar or log lines, only the results"),
        resumable=True,
    )
    logger: str = setting(
        "jsonl",
        "jsonl (metrics.jsonl only) or tensorboard (also RUN/tensorboard/, for `tensorboard "
        '--logdir runs`; needs pip install "contrastkit[tensorboard]")',
        check=one_of(LOGGERS),
        flag=True,
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
    num_workers: int | None = setting(
        None,
        "data-loading processes ({default})",
        check=non_negative,
        flag=Flag(
            default=f"the CPU cores, at most {MAX_DEFAULT_WORKERS}, for folder: and "
            "shards: photos; 0 for the bundled data, which is in memory"
        ),
        resumable=True,
    )
    decode: str = setting(
        "auto",
        "where folder: and shards: photos are decoded: workers (on the CPU, in the "
        "--num-workers processes), device (JPEGs on --device, nvJPEG on CUDA; the CPU only "
        "reads files) or auto (device on CUDA, workers otherwise)",
        check=one_of(DECODE_MODES),
        flag=True,
    )
    eval_batch_size: int = setting(
        512,
        "batch size when embedding datasets for evaluation (at most 64 for full-resolution photos)",
        check=positive_int,
        resumable=True,
    )
    input_shape: list[int] | None = setting(
        None, "shape of one sample, filled in from the data (rebuilds the backbone)"
    )
    resumed_changes: list[dict] = setting(
        help="what --resume changed, one entry per change: the step it took effect at and "
        'each changed field\'s [before, after], e.g. {"step": 120, "lr": [1000000.0, 0.001]}',
        factory=list,
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


def changeable_fields() -> set[str]:
    """Return the fields ``--resume`` may change with a recorded change (``--lr`` and so on)."""
    return {name for name, s in settings().items() if s.changeable}


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
    "DECODE_MODES",
    "DATA_DEFAULTS",
    "DEFAULT_BACKBONE_BY_KIND",
    "GLOBAL_DEFAULTS",
    "LOGGERS",
    "MAX_DEFAULT_WORKERS",
    "MEMORY_FORMATS",
    "OPTIMIZERS",
    "PRESETS",
    "PYTHON_OBJECT",
    "SCHEDULES",
    "VIEW_PIPELINES",
    "Flag",
    "Setting",
    "TrainConfig",
    "check_config",
    "check_values",
    "changeable_fields",
    "resumable_fields",
    "setting",
    "settings",
]

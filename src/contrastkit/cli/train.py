"""``contrastkit train``: train a method on a dataset, then evaluate it against the baselines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from contrastkit.cli.report import format_eval, format_training

EXIT_DIVERGED = 1


def _key_value(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train an encoder without labels, then evaluate it",
        description=(
            "Train a self-supervised method and evaluate the representation h (kNN and "
            "linear-probe accuracy, separation gap, alignment/uniformity, effective rank) next to "
            "the raw input and a randomly initialised encoder. With no arguments: SimCLR on the "
            "8x8 digits, about two minutes on a laptop CPU. Settings left unset take the "
            "dataset's defaults (contrastkit.training.config.DATA_DEFAULTS); a --config "
            "recipe overrides them and flags override the recipe. The run folder gets config.json, "
            "metrics.jsonl, checkpoint.pt, summary.json and PNG plots."
        ),
    )
    add = parser.add_argument
    add("--method", default=None, help="simclr, moco, byol, ... (default: simclr)")
    add(
        "--data",
        default=None,
        help="NAME or NAME:PATH: toy (2-D clusters), digits (8x8), ... (default: digits)",
    )
    add(
        "--backbone",
        default=None,
        help="encoder: mlp, cnn, resnet18, resnet50, vit, timm:NAME (default: mlp for points, "
        "cnn for small images)",
    )
    add(
        "--epochs",
        type=int,
        default=None,
        help="passes over the data (default: 40 on digits). Contrastive methods keep improving "
        "long after the loss flattens; train longer before trying bigger models",
    )
    add("--steps", type=int, default=None, help="optimizer steps; wins over --epochs (toy: 100)")
    add(
        "--batch-size",
        type=int,
        default=None,
        help="samples per step (default: 256; toy 16). Each sample's other 2N-2 views are its "
        "negatives, so larger batches tighten the InfoNCE bound log(2N-1)",
    )
    add(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate after warmup (default: 2e-3 on digits with AdamW). With "
        "--optimizer lars use about 0.3 x batch/256 (SimCLR)",
    )
    add("--weight-decay", type=float, default=None, help="(default: 1e-4; toy 0)")
    add("--optimizer", default=None, help="adamw (small data), sgd, lars (large batches)")
    add("--warmup-epochs", type=float, default=None, help="linear warmup (default: 4 on digits)")
    add(
        "--clip-grad",
        type=float,
        default=None,
        help="clip the gradient norm (default: off; 3.0 for dino, as in its paper)",
    )
    add("--amp", default=None, help="auto (bf16/fp16 on CUDA, off on CPU), off, bf16, fp16")
    add(
        "--temperature",
        type=float,
        default=None,
        help="the method's temperature (default: the paper's, 0.5 for SimCLR). Lower values "
        "weigh hard negatives more; below 0.1 training is often unstable",
    )
    add("--seed", type=int, default=None, help="fixes init, data order and views (default: 0)")
    add("--device", default=None, help="auto, cpu, cuda, cuda:N (default: auto)")
    add("--out", default=None, help="run folder (default: runs/<method>-<data>-<timestamp>)")
    add(
        "--config",
        metavar="TOML",
        default=None,
        help="a recipe whose keys are TrainConfig fields, e.g. configs/toy.toml",
    )
    add(
        "--set",
        dest="options",
        metavar="KEY=VALUE",
        action="append",
        type=_key_value,
        default=[],
        help="a method option (hidden_dim=512), or backbone.KEY / views.KEY for the backbone "
        "and view recipe (backbone.width=64); VALUE is JSON if it parses. Repeatable",
    )
    add("--checkpoint-every", type=int, default=None, help="steps (default: every epoch)")
    add("--log-every", type=int, default=None, help="steps between metrics lines (default: 10)")
    add(
        "--chunk-size",
        type=int,
        default=None,
        help="gradient caching: embed at most this many samples at once, then backpropagate "
        "chunk by chunk, for batches larger than memory with the same gradient (default: off; "
        "simclr and clip)",
    )
    add(
        "--backend",
        default=None,
        help="under torchrun: auto (nccl with GPUs, else gloo), gloo, nccl. --batch-size is then "
        "the global batch, split over the processes (default: auto)",
    )
    add(
        "--sync-bn",
        action="store_true",
        help="under torchrun: BatchNorm statistics over the global batch (default: per process)",
    )
    add("--num-workers", type=int, default=None, help="data-loading processes (default: 0)")
    add(
        "--view-pipeline",
        default=None,
        help="auto (default: batched for image recipes, per_sample otherwise), batched (views "
        "of the whole batch at once on --device, 10x cheaper on a CPU), per_sample "
        "(torchvision v2, one image at a time)",
    )
    add(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue a run from its last checkpoint with its saved settings",
    )
    add("--overwrite", action="store_true", help="replace an existing run folder given by --out")
    add("--no-eval", action="store_true", help="skip the evaluation after training")
    add("--tsne", action="store_true", help="also draw a t-SNE map of h (slower than PCA)")
    add("--quiet", action="store_true", help="no progress bar or log lines, only the results")
    parser.set_defaults(func=run)


FLAG_FIELDS = (
    "method",
    "data",
    "backbone",
    "epochs",
    "steps",
    "batch_size",
    "lr",
    "weight_decay",
    "optimizer",
    "warmup_epochs",
    "clip_grad",
    "amp",
    "temperature",
    "seed",
    "device",
    "out",
    "checkpoint_every",
    "log_every",
    "chunk_size",
    "backend",
    "num_workers",
    "view_pipeline",
)


def build_config(args: argparse.Namespace):
    """Merge the recipe (--config) and the flags into a TrainConfig."""
    from contrastkit.training.config import TrainConfig, load_toml

    values = load_toml(args.config) if args.config else {}
    for name in FLAG_FIELDS:
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.epochs is not None and args.steps is None:
        values.pop("steps", None)  # an explicit --epochs beats a recipe's steps
    if args.steps is not None and args.epochs is None:
        values.pop("epochs", None)
    if args.warmup_epochs is not None:
        values.pop("warmup_steps", None)
    for key in ("method_options", "backbone_options", "view_options"):
        values[key] = dict(values.get(key, {}))
    for key, value in args.options:
        if key.startswith("backbone."):
            values["backbone_options"][key.removeprefix("backbone.")] = value
        elif key.startswith("views."):
            values["view_options"][key.removeprefix("views.")] = value
        else:
            values["method_options"][key] = value
    if args.no_eval:
        values["eval"] = False
    if args.tsne:
        values["tsne"] = True
    if args.sync_bn:
        values["sync_bn"] = True
    if args.quiet:
        values["progress"] = False
    return TrainConfig.from_dict(values, source="--config" if args.config else "flags")


def run(args: argparse.Namespace) -> int:
    """Train (or resume), print the results; return the exit code."""
    import logging

    from contrastkit import distributed
    from contrastkit.training.runs import SUMMARY_FILE
    from contrastkit.training.trainer import TrainingDiverged, resume, train

    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        if args.resume:
            given = [
                f"--{n.replace('_', '-')}" for n in FLAG_FIELDS if getattr(args, n) is not None
            ]
            given = [flag for flag in given if flag != "--device"]
            if given or args.config or args.options or args.overwrite:
                raise ValueError(
                    "--resume continues a run with its saved settings; drop "
                    + ", ".join(given + (["--config"] if args.config else []))
                    + (" --set" if args.options else "")
                    + (" --overwrite" if args.overwrite else "")
                )
            overrides = {"eval": False} if args.no_eval else {}
            if args.quiet:
                overrides["progress"] = False
            run_dir = resume(args.resume, device=args.device, **overrides)
        else:
            run_dir = train(build_config(args), overwrite=args.overwrite)
    except TrainingDiverged as err:
        print(f"contrastkit train: error: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    if not distributed.is_main_process():
        return 0  # under torchrun rank 0 reports
    summary = json.loads((Path(run_dir) / SUMMARY_FILE).read_text())
    print(f"run folder: {run_dir}")
    print(format_training(summary))
    if summary.get("eval"):
        print()
        print(format_eval(summary["eval"], f"held-out {summary['data']}"))
        print(f"(evaluation took {summary['eval']['eval_seconds']:.1f} s)")
    return 0

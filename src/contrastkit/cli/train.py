"""``contrastkit train``: train a method on a dataset, then evaluate it against the baselines."""

from __future__ import annotations

import argparse
import json
import sys
import typing
from dataclasses import fields
from pathlib import Path

from contrastkit.cli.report import format_eval, format_training
from contrastkit.training.config import (  # no torch: the parser builds in a blink
    DATA_DEFAULTS,
    DEFAULT_BACKBONE_BY_KIND,
    GLOBAL_DEFAULTS,
    TrainConfig,
    changeable_fields,
    resumable_fields,
    settings,
)
from contrastkit.training.files import load_toml

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
    """Add the ``train`` subcommand: a flag per ``TrainConfig`` field that declares one."""
    parser = subparsers.add_parser(
        "train",
        help="train an encoder without labels, then evaluate it",
        description=(
            "Train a self-supervised method and evaluate the representation h (kNN and "
            "linear-probe accuracy, separation gap, alignment/uniformity, effective rank) next to "
            "the raw input and a randomly initialised encoder. With no arguments: SimCLR on the "
            "8x8 digits, about two minutes on a laptop CPU. The built-in recipe of the method "
            "and data is applied first (its name is printed; --preset paper for none), then "
            "your --config recipe, then the flags; what is still unset takes the dataset's "
            "defaults (contrastkit.training.config.DATA_DEFAULTS). The run folder gets "
            "config.json, metrics.jsonl, checkpoint.pt, summary.json and PNG plots."
        ),
    )
    _add_setting_flags(parser)
    add = parser.add_argument
    add(
        "--config",
        metavar="TOML",
        default=None,
        help="your own recipe: a TOML file whose keys are TrainConfig fields; it overrides the "
        "built-in recipe of --method and --data (--preset), and flags override it",
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
    add(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue a run from its last checkpoint with its saved settings",
    )
    add("--overwrite", action="store_true", help="replace an existing run folder given by --out")
    parser.set_defaults(func=run)


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flag of every ``TrainConfig`` field that has one, with its default in its help."""
    hints = typing.get_type_hints(TrainConfig)
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for name, spec in settings().items():
        flag = spec.flag
        if flag is None:
            continue
        text = (flag.help or spec.help).replace("%", "%%")
        note = _default_text(name, defaults[name], flag, defaults["data"])
        if note is not None:
            text = text.format(default=note) if "{default}" in text else f"{text} ({note})"
        if flag.sets is not None:  # a switch
            action = {"action": "store_const", "const": flag.sets}
        else:
            action = {"type": _value_type(hints[name])}
        parser.add_argument(_flag_name(name), dest=name, default=None, help=text, **action)


def _flag_name(name: str) -> str:
    """Return the command-line flag of field ``name`` (``--field-name`` unless it says)."""
    return settings()[name].flag.name or f"--{name.replace('_', '-')}"


def _value_type(hint) -> type:
    """Return the argparse type of a field annotated ``hint`` (``int | None`` -> int)."""
    kinds = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    return kinds[0] if kinds and kinds[0] in (int, float) else str


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _default_text(name: str, default, flag, main_data: str) -> str | None:
    """Return a flag's "default: ..." from DATA_DEFAULTS and GLOBAL_DEFAULTS (never by hand).

    The default dataset's value comes first, then the other datasets' where they differ, then
    the value every other dataset gets ("otherwise").
    """
    if flag.default is not None:
        return f"default: {flag.default}"
    if flag.sets is not None:
        return None  # a switch is off unless given
    fallback = GLOBAL_DEFAULTS.get(name, default)
    if name == "backbone":
        fallback = ", ".join(f"{b} for {kind}" for kind, b in DEFAULT_BACKBONE_BY_KIND.items())
    by_data = {data: values[name] for data, values in DATA_DEFAULTS.items() if name in values}
    first = by_data.pop(main_data, None)
    usual = "none" if fallback is None else _text(fallback)  # datasets without their own
    parts = (
        [f"{_text(first)} on {main_data}"]
        if first is not None and _text(first) != usual
        else [usual]
    )
    parts += [f"{data} {_text(v)}" for data, v in by_data.items() if _text(v) != usual]
    if parts[0] != usual and fallback is not None:
        parts.append(f"otherwise {usual}")
    return None if parts == ["none"] else "default: " + "; ".join(parts)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """Merge the built-in recipe (--preset), the user's (--config) and the flags: flags win."""
    from contrastkit.training.presets import with_recipe

    values = load_toml(args.config) if args.config else {}
    given = [name for name in settings() if getattr(args, name, None) is not None]
    for name in given:
        values[name] = getattr(args, name)
        partner = settings()[name].flag.replaces
        if partner is not None and partner not in given:
            values.pop(partner, None)  # --epochs beats a recipe's steps, and so on
    for key in ("method_options", "backbone_options", "view_options"):
        values[key] = dict(values.get(key, {}))
    for key, value in args.options:
        if key.startswith("backbone."):
            values["backbone_options"][key.removeprefix("backbone.")] = value
        elif key.startswith("views."):
            values["view_options"][key.removeprefix("views.")] = value
        else:
            values["method_options"][key] = value
    source = "--config" if args.config else "flags"
    return TrainConfig.from_dict(with_recipe(values), source=source)


def _resume(args: argparse.Namespace, on_start) -> Path:
    """Continue ``--resume RUN_DIR``: flags that keep the result, and the changeable ones.

    ``--lr``, ``--weight-decay`` and ``--clip-grad`` may change (for a run that diverged); the
    change is recorded in config.json. Every other setting stays the run's own.
    """
    from contrastkit.training.trainer import resume

    resumable = resumable_fields() | changeable_fields()
    given = [name for name in settings() if getattr(args, name, None) is not None]
    refused = [_flag_name(n) for n in given if n not in resumable and n != "device"]
    if refused or args.config or args.options or args.overwrite:
        may_change = ", ".join(sorted(_flag_name(n) for n in changeable_fields()))
        raise ValueError(
            "--resume continues a run with its saved settings (of those that change the "
            f"result only {may_change} may change); drop "
            + ", ".join(refused + (["--config"] if args.config else []))
            + (" --set" if args.options else "")
            + (" --overwrite" if args.overwrite else "")
        )
    overrides = {name: getattr(args, name) for name in given if name in resumable}
    return resume(args.resume, device=args.device, on_start=on_start, **overrides)


def run(args: argparse.Namespace) -> int:
    """Train (or resume), print the results; return the exit code."""
    import logging

    from contrastkit import distributed
    from contrastkit.training.runs import SUMMARY_FILE
    from contrastkit.training.trainer import TrainingDiverged, train

    if args.progress is False:  # --quiet
        logging.getLogger().setLevel(logging.WARNING)

    def announce(run_dir: Path) -> None:  # before the first step (rank 0), so it is seen first
        print(f"run folder: {run_dir}", flush=True)

    try:
        if args.resume:
            run_dir = _resume(args, announce)
        else:
            run_dir = train(build_config(args), overwrite=args.overwrite, on_start=announce)
    except TrainingDiverged as err:
        print(f"contrastkit train: error: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    if not distributed.is_main_process():
        return 0  # under torchrun rank 0 reports
    summary = json.loads((Path(run_dir) / SUMMARY_FILE).read_text())
    print(format_training(summary))
    if summary.get("eval"):
        print()
        print(format_eval(summary["eval"], f"held-out {summary['data']}"))
        print(f"(evaluation took {summary['eval']['eval_seconds']:.1f} s)")
    print(f"files: {run_dir}")
    return 0

"""``contrastkit eval``: re-evaluate a saved run against the raw-input and random-init baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        "eval",
        help="re-evaluate a saved run (kNN, linear probe, separation, ...)",
        description=(
            "Load RUN_DIR's encoder (config.json + checkpoint.pt, loaded without executing code), "
            "embed the training and held-out splits of its dataset and report kNN and "
            "linear-probe accuracy, same/different-label cosine, separation gap, alignment, "
            "uniformity and effective rank of h, next to the raw input and the random "
            "initialisation. Updates summary.json and the plots."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default: auto)")
    parser.add_argument("--tsne", action="store_true", help="also draw a t-SNE map of h")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the run and print the table; return the exit code."""
    import dataclasses

    from contrastkit.cli.report import format_eval
    from contrastkit.training.runs import SUMMARY_FILE, evaluate_run, load_run, write_json
    from contrastkit.training.trainer import resolve_device

    device = resolve_device(args.device)
    method, config = load_run(args.run_dir, device=str(device))
    if args.tsne:
        config = dataclasses.replace(config, tsne=True)
    results = evaluate_run(method, config, args.run_dir, str(device))
    path = Path(args.run_dir) / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        summary = {"method": config.method, "data": config.data}
    summary["eval"] = results
    write_json(path, summary)
    print(format_eval(results, f"held-out {config.data}"))
    print(f"(evaluation took {results['eval_seconds']:.1f} s; written to {path})")
    return 0

"""``contrastkit experiment``: measure one of the post's claims with short trainings."""

from __future__ import annotations

import argparse

NAMES = ("batch-size", "temperature", "projection-head", "collapse", "toy")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``experiment`` subcommand."""
    parser = subparsers.add_parser(
        "experiment",
        help="measure a claim of the post: batch-size, temperature, projection-head, collapse, toy",
        description=(
            "Train short runs that test one claim and print a table (mean ± std over seeds) and "
            "whether the claim holds, with the numbers. Writes DIR/results.json, a PNG figure "
            "and one run folder per training under DIR/runs/. batch-size: K, log(K+1), loss, "
            "kNN and linear probe from batch 16 to 1024; temperature: the hardest negative's "
            "softmax weight, alignment, uniformity, kNN; projection-head: linear probe on h, "
            "each head layer and z; collapse: each non-contrastive method with and without the "
            "mechanism that stops collapse; toy: the post's numbers next to measured ones."
        ),
    )
    parser.add_argument("name", metavar="NAME", help=", ".join(NAMES))
    parser.add_argument(
        "--data",
        metavar="D",
        help="dataset spec, as for train (default: digits; toy for the toy experiment)",
    )
    parser.add_argument(
        "--seeds", type=int, default=3, metavar="S", help="runs per setting (default: 3)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer sweep points and steps: each experiment under 5 minutes on a 2-core CPU",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="the experiment folder")
    parser.add_argument(
        "--threads",
        type=int,
        metavar="T",
        help="CPU threads for torch (default: 1 with --quick, where the models are so small "
        "that more threads only contend; otherwise torch's default)",
    )
    # tests: every run's number of steps
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the experiment, print its table and claims; return the exit code."""
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    import torch

    from contrastkit.experiments import RESULTS_FILE, run_experiment

    threads = args.threads if args.threads is not None else (1 if args.quick else None)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        result = run_experiment(
            args.name,
            args.out,
            data=args.data,
            seeds=args.seeds,
            quick=args.quick,
            steps=args.steps,
        )
    finally:
        torch.set_num_threads(before)  # as it was for a caller of main() in the same process
    seeds = result.records[-1]["seed"] + 1 if result.records else 0
    print(f"{result.experiment} ({seeds} seed{'s' * (seeds != 1)}; mean ± std over seeds)")
    print(result.table)
    for claim in result.claims:
        print(claim.line())
    print(f"wrote {args.out}/{RESULTS_FILE} and {result.figure}")
    return 0

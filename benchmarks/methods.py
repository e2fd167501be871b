"""Run every method's default recipe on digits and shapes over seeds; print the proving table.

    python benchmarks/methods.py        # every method, digits and shapes, seeds 0 1 2
    python benchmarks/methods.py --quick --out /tmp/bench   # smoke run: simclr and supervised,
                                                            # seed 0, 20 steps
    python benchmarks/methods.py --data shapes --methods byol dino --seeds 0 --out runs/bench

Every run is exactly what a user types, ``contrastkit train --method M --data D --seed S``
(the built-in recipe of (M, D), nothing else; ``--steps`` only when this script is given
``--steps`` or ``--quick``), each in its own process, so that its whole-process wall time
(interpreter start, data, training, evaluation, plots) and its peak resident memory (``VmHWM``
of that process) are its own. CLIP runs on ``shapes`` only (``digits`` has no captions).

From each run's ``summary.json`` the table takes kNN (k=20) and linear-probe accuracy of the
trained h on the held-out split, next to the same numbers for the raw pixels and for the
run's own random initialisation, and ``supervised`` (the same backbone trained with labels) as
the yardstick; from ``metrics.jsonl`` the online kNN curve of every run. It prints mean ± std
over seeds, the gain over random init, the fraction of supervised's gain and a verdict on each
of issue #14's criteria (``methods_table.py``), and writes ``--out DIR/results.json`` (every
record and row) and ``DIR/knn_curves.png`` (kNN vs step of every method, mean over seeds).

Each finished run's record (the numbers above, its kNN curve, the machine's load when it
started and the recipe's fingerprint) is written to ``--records DIR/<method>-<data>-seed<S>.json``
(default ``benchmarks/results/methods/``, committed to the repository, never a checkpoint). A
run whose record exists with the same recipe fingerprint and ``--steps`` is not trained again,
so the table is built in parts: one (method, data, seed) per call, by any session on any
machine, and ``--table-only`` prints the table of the records there are (partial tables say so).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # methods_table, next to this file

import methods_table as table  # noqa: E402

DATA = ("digits", "shapes")
QUICK_METHODS = ("simclr", "supervised")
QUICK_STEPS = 20
RECORDS = Path(__file__).resolve().parent / "results" / "methods"  # committed, one per run
PEAK_PREFIX = "benchmark-peak-mib: "


def all_methods() -> tuple[str, ...]:
    """Return the names of ``contrastkit.methods.METHODS`` (``supervised`` included)."""
    from contrastkit.methods import METHODS

    return tuple(METHODS)


def supported(method: str, data: str) -> bool:
    """Return whether ``method`` can train on ``data`` at all (CLIP needs captions)."""
    from contrastkit.training.presets import UNSUPPORTED

    return (method, data) not in UNSUPPORTED


def peak_rss_mib() -> float:
    """Return this process's peak resident memory in MiB (Linux: VmHWM of /proc/self/status).

    Not ``ru_maxrss`` of the child: Linux carries a forked child's high-water mark, which
    counts the parent's pages, across ``exec``.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def worker(argv: list[str]) -> int:
    """Run ``contrastkit`` with ``argv`` in this process, then print its peak memory."""
    from contrastkit.cli import main

    code = main(argv)
    print(f"{PEAK_PREFIX}{peak_rss_mib():.1f}", flush=True)
    return code


def train_argv(method: str, data: str, seed: int, out: Path, steps: int | None) -> list[str]:
    """Return the ``contrastkit`` arguments of one run: the user's command, plus its folder."""
    argv = ["train", "--method", method, "--data", data, "--seed", str(seed)]
    argv += ["--out", str(out), "--quiet"]
    return argv + (["--steps", str(steps)] if steps is not None else [])


def recipe_fingerprint(method: str, data: str) -> str:
    """Return the sha256 of the built-in recipe of (method, data) ("none" without one)."""
    from contrastkit.training.presets import find_recipe, load_recipe

    name = find_recipe(method, data)
    if name is None:
        return "none"
    text = json.dumps(load_recipe(name), sort_keys=True)  # the settings, not the comments
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def saved_record(path: Path, fingerprint: str, steps: int | None) -> dict | None:
    """Return the record at ``path`` if it was made by this recipe and length, else None."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if record.get("recipe_sha256") != fingerprint or record.get("steps_flag") != steps:
        return None
    return record


def reusable_record(
    records: Path, method: str, data: str, seed: int, steps: int | None
) -> dict | None:
    """Return the saved record of (method, data, seed) if the current recipe made it."""
    path = records / f"{method}-{data}-seed{seed}.json"
    return saved_record(path, recipe_fingerprint(method, data), steps)


def run_one(
    method: str, data: str, seed: int, folder: Path, records: Path, steps: int | None
) -> dict:
    """Train one run in a child process (or reuse its record); return the record."""
    name = f"{method}-{data}-seed{seed}"
    out, record_path = folder / name, records / f"{name}.json"
    fingerprint = recipe_fingerprint(method, data)
    saved = reusable_record(records, method, data, seed, steps)
    if saved is not None:
        print(f"# reusing {record_path}", file=sys.stderr, flush=True)
        return saved
    cmd = [sys.executable, __file__, "--worker", *train_argv(method, data, seed, out, steps)]
    load = os.getloadavg()[0]
    if out.exists():  # a run killed before its record: start it again
        shutil.rmtree(out)
    start = time.perf_counter()
    child = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[3:])} exited {child.returncode}:\n{child.stderr[-2000:]}"
        )
    peaks = [ln for ln in child.stdout.splitlines() if ln.startswith(PEAK_PREFIX)]
    summary = json.loads((out / "summary.json").read_text())
    lines = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if ln]
    record = table.run_record(
        summary, lines, seed=seed, wall_s=wall, peak_mib=float(peaks[-1][len(PEAK_PREFIX) :])
    )
    record |= {"recipe_sha256": fingerprint, "steps_flag": steps, "load_at_start": load}
    record["machine"] = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    record["command"] = "contrastkit " + " ".join(train_argv(method, data, seed, out, steps))
    record_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = record_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(record_path)  # atomic: a killed benchmark leaves no half record
    brief = {k: record[k] for k in ("knn", "probe", "init_knn", "wall_s", "peak_mib")}
    print(f"# {method} {data} seed {seed}: {json.dumps(brief)}", file=sys.stderr, flush=True)
    return record


def mean_curve(records: list[dict]) -> tuple[list[int], list[float]]:
    """Return the steps and the mean kNN over the runs that evaluated at every one of them."""
    by_step: dict[int, list[float]] = {}
    for r in records:
        for step, knn in r["curve"]:
            by_step.setdefault(int(step), []).append(knn)
    steps = sorted(s for s, v in by_step.items() if len(v) == len(records))
    return steps, [sum(by_step[s]) / len(by_step[s]) for s in steps]


def save_curves(path: Path, records: list[dict]) -> None:
    """Draw kNN vs step of every method, one panel per dataset (matplotlib Figure API)."""
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(r["data"] for r in records))
    others = [m for m in dict.fromkeys(r["method"] for r in records) if m != table.SUPERVISED]
    colours = {m: f"C{i % 10}" for i, m in enumerate(others)}  # one colour a method, every panel
    fig = Figure(figsize=(6 * len(datasets), 4.2), layout="constrained")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, data in zip(axes, datasets, strict=True):
        mine = [r for r in records if r["data"] == data]
        for method in dict.fromkeys(r["method"] for r in mine):
            steps, knn = mean_curve([r for r in mine if r["method"] == method])
            style = {"color": colours.get(method, "black")}
            if method == table.SUPERVISED:
                style["linestyle"] = "--"
            ax.plot(steps, knn, marker=".", label=method, **style)
        raw = sum(r["raw_knn"] for r in mine) / len(mine)
        ax.axhline(raw, color="grey", linestyle=":", label="raw pixels")
        seeds = sorted({r["seed"] for r in mine})
        ax.set(title=f"{data}: online kNN (mean of seeds {seeds})", xlabel="step")
        ax.set(ylabel="kNN accuracy (held-out)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/methods-bench"),
        help="folder of the runs and results (default: runs/methods-bench)",
    )
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=DATA)
    parser.add_argument("--methods", nargs="+", help="default: every method (--quick: 2)")
    parser.add_argument("--seeds", nargs="+", type=int, help="default: 0 1 2 (--quick: 0)")
    parser.add_argument(
        "--steps", type=int, help="override every recipe's length (default: the recipe's)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {' and '.join(QUICK_METHODS)}, seed 0, {QUICK_STEPS} steps",
    )
    parser.add_argument("--figure", type=Path, help="default: OUT/knn_curves.png")
    parser.add_argument(
        "--records",
        type=Path,
        default=RECORDS,
        help="folder of each run's record, reused when its recipe is unchanged "
        "(default: benchmarks/results/methods)",
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="train nothing: the table of the records already in --records",
    )
    args = parser.parse_args(argv)
    known = all_methods()
    args.methods = args.methods or list(QUICK_METHODS if args.quick else known)
    unknown = sorted(set(args.methods) - set(known))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; expected some of {', '.join(known)}")
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    if args.quick and args.steps is None:
        args.steps = QUICK_STEPS
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps {args.steps}: expected a positive number of steps")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    args = parse_args(argv)
    start = time.perf_counter()
    wanted = [
        (method, data, seed)
        for data in args.data
        for method in args.methods
        if supported(method, data)
        for seed in args.seeds
    ]
    if args.table_only:
        saved = [reusable_record(args.records, *key, args.steps) for key in wanted]
        records = [r for r in saved if r is not None]
        missing = len(wanted) - len(records)
        if not records:
            print(f"no records in {args.records} for these runs", file=sys.stderr)
            return 1
    else:
        records = [run_one(*key, args.out / "runs", args.records, args.steps) for key in wanted]
        missing = 0
    rows = table.aggregate(records)
    checks = table.criteria(rows)
    figure = args.figure or args.out / "knn_curves.png"
    save_curves(figure, records)
    results = {"records": records, "rows": rows, "criteria": checks, "steps": args.steps}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    length = f"--steps {args.steps}" if args.steps else "each recipe's length"
    print(f"{len(records)} runs ({length}), {time.perf_counter() - start:.0f} s in all\n")
    if missing:
        print(f"PARTIAL: {missing} of the {len(wanted)} runs asked for have no record yet\n")
    if args.steps is not None:
        print("(--steps overrides every recipe: a smoke run; the verdicts judge these runs, not")
        print(" the recipes, whose budgets and quality need the default length)\n")
    print(table.markdown(rows, checks))
    print(f"\nresults: {args.out / 'results.json'}; figure: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

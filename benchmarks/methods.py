"""Compare every method on the same data, backbone and CPU budget; print one Markdown table.

    python benchmarks/methods.py            # shapes and digits, every method (547 s, 2 idle cores)
    python benchmarks/methods.py --quick    # a smoke run: few steps, two methods per dataset

Each method trains with its small-data recipe (``configs/<method>-<data>.toml``: head sizes,
queues, temperatures, view options, learning rate) but with the same backbone, number of steps
and batch size, in its own process (``contrastkit.training.trainer.train``), so that its peak memory
(``VmHWM`` of that process) and its time are its own. The trained encoder's h is then
evaluated on the held-out split: weighted kNN (k=20) and linear-probe accuracy, separation gap
(same-label minus different-label mean cosine) and effective rank, next to the same numbers for
the raw pixels and for the randomly initialised backbone (identical for every method: the
trainer seeds the initialisation).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("simclr", "moco", "mocov3", "byol", "simsiam", "dino", "barlow_twins", "vicreg")
DATA = ("shapes", "digits")
# settings every method shares, per dataset (the backbone and the budget)
SHARED = {
    "shapes": {"steps": 600, "batch_size": 64, "backbone": "cnn", "width": 16},
    "digits": {"steps": 200, "batch_size": 128, "backbone": "cnn", "width": 16},
}
QUICK = {"steps": 20, "methods": ("simclr", "byol")}


def run_config(method: str, data: str, steps: int, batch_size: int, out: Path) -> dict:
    """Return the TrainConfig fields of one benchmark run: the recipe plus the shared budget."""
    from contrastkit.training.files import load_toml

    recipe = ROOT / "configs" / f"{method}-{data}.toml"
    values = load_toml(recipe) if recipe.exists() else {}  # SimCLR on digits: the defaults
    shared = SHARED[data]
    values |= {
        "method": method,
        "data": data,
        "backbone": shared["backbone"],
        "backbone_options": {"width": shared["width"]},
        "steps": steps,
        "epochs": None,
        "batch_size": batch_size,
        "seed": 0,
        "eval": False,
        "progress": False,
        "out": str(out),
    }
    return values  # the recipe's warmup, as `contrastkit train --config ... --steps N` keeps it


def peak_rss_mib() -> float:
    """Return this process's peak resident memory in MiB (Linux: VmHWM of /proc/self/status).

    Not ``ru_maxrss``: Linux carries a forked child's high-water mark, which counts the
    parent's pages, across ``exec``.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def worker(config_json: str) -> None:
    """Train one run (in its own process) from TrainConfig fields given as JSON."""
    from contrastkit.training.trainer import TrainConfig, train

    train(TrainConfig.from_dict(json.loads(config_json)), overwrite=True)
    print(json.dumps({"peak_mib": peak_rss_mib()}))


def train_in_subprocess(values: dict) -> tuple[float, float]:
    """Train in a child process; return (training seconds, its peak resident memory in MiB)."""
    cmd = [sys.executable, __file__, "--worker", json.dumps(values)]
    child = subprocess.run(cmd, capture_output=True, text=True)
    if child.returncode != 0:
        raise RuntimeError(
            f"{values['method']} on {values['data']} failed:\n{child.stderr[-2000:]}"
        )
    summary = json.loads((Path(values["out"]) / "summary.json").read_text())
    peak_mib = json.loads(child.stdout.strip().splitlines()[-1])["peak_mib"]
    return float(summary["train_seconds"]), peak_mib


def evaluate(encoder, train_ds, test_ds) -> dict[str, float]:
    """Return kNN, linear probe, separation gap and effective rank of h on the held-out split."""
    from contrastkit.evaluation import metrics as ev

    if encoder is None:
        train_f, train_y = ev.raw_features(train_ds)
        test_f, test_y = ev.raw_features(test_ds)
    else:
        train_f, train_y = ev.embed_dataset(encoder, train_ds, 512, "cpu")
        test_f, test_y = ev.embed_dataset(encoder, test_ds, 512, "cpu")
    return {
        "knn": ev.knn_accuracy(train_f, train_y, test_f, test_y),
        "probe": ev.linear_probe_accuracy(train_f, train_y, test_f, test_y),
        "gap": ev.separation_gap(test_f, test_y),
        "rank": ev.effective_rank(test_f),
    }


def benchmark(data: str, methods, steps: int, batch_size: int, folder: Path) -> list[dict]:
    """Train and evaluate every method on ``data``; return one row per method plus baselines."""
    from contrastkit.data import build_dataset
    from contrastkit.training.runs import load_run
    from contrastkit.training.trainer import TrainConfig, prepare

    train_ds = build_dataset(data, train=True, seed=0)
    test_ds = build_dataset(data, train=False, seed=0)
    rows = [{"data": data, "method": "raw pixels", **evaluate(None, train_ds, test_ds)}]
    values = run_config("simclr", data, steps, batch_size, folder / "init")
    _, _, init, _ = prepare(TrainConfig.from_dict(values))  # the weights every run starts from
    init.eval()
    rows.append({"data": data, "method": "random init", **evaluate(init, train_ds, test_ds)})
    for method in methods:
        values = run_config(method, data, steps, batch_size, folder / f"{method}-{data}")
        seconds, peak = train_in_subprocess(values)
        trained, _ = load_run(values["out"])
        row = {"data": data, "method": method, **evaluate(trained, train_ds, test_ds)}
        rows.append(row | {"seconds": seconds, "peak_mib": peak})
        print(f"# {data} {method}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    """Format the rows as one Markdown table."""
    lines = [
        "| data | method | kNN acc | linear probe | separation gap | effective rank | "
        "train s | peak MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        seconds = f"{r['seconds']:.0f}" if "seconds" in r else "–"
        peak = f"{r['peak_mib']:.0f}" if "peak_mib" in r else "–"
        lines.append(
            f"| {r['data']} | {r['method']} | {r['knn']:.3f} | {r['probe']:.3f} | "
            f"{r['gap']:.3f} | {r['rank']:.1f} | {seconds} | {peak} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 steps, simclr and byol only")
    parser.add_argument("--data", default=",".join(DATA), help="comma-separated datasets")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    parser.add_argument("--steps", type=int, help="steps per run (default: per dataset)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: per dataset)")
    parser.add_argument("--keep", metavar="DIR", help="keep the run folders in DIR")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    methods = QUICK["methods"] if args.quick else tuple(args.methods.split(","))
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; expected some of {', '.join(METHODS)}")
    start = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        for data in args.data.split(","):
            if data not in SHARED:
                parser.error(f"unknown dataset {data!r}; expected some of {', '.join(DATA)}")
            steps = QUICK["steps"] if args.quick else args.steps or SHARED[data]["steps"]
            batch = args.batch_size or SHARED[data]["batch_size"]
            rows += benchmark(data, methods, steps, batch, folder)
            print(
                f"# {data}: {steps} steps of batch {batch}, backbone "
                f"{SHARED[data]['backbone']} (width {SHARED[data]['width']})",
                file=sys.stderr,
            )
    print(markdown(rows))
    print(f"\n({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()

"""Does a command's memory and time grow with the folder? ``train``, ``eval`` and ``embed`` on
folders of N photos, whole processes, as a user runs them.

For each N in ``--photos`` (default 2,000 and 8,000) it makes a folder of N JPEGs of 500x375 px
(``folder_pipeline.generated_photos``, 10 classes, made once under ``--cache``)
and runs, one at a time:

- ``contrastkit train --method simclr --data folder:DIR --backbone resnet18 --steps 4
  --batch-size 32`` (evaluation on, as typed by a user): wall time, seconds to the first
  step (``metrics.jsonl`` polled every 50 ms), peak RSS, the evaluation's own seconds;
- ``contrastkit eval RUN``: every photo of both splits, wall time and peak RSS;
- ``contrastkit embed RUN --data folder:DIR --split all``: wall time and peak RSS.

Peak RSS is the largest resident set of the command's processes (``RUSAGE_CHILDREN`` of a
fresh ``time``-like parent: the training process or one of its DataLoader workers). The last
lines compare the largest N with the smallest against issue #27's bars: peak RSS within 150 MB,
``train`` wall time within +50%, the first step within 15 s.

  python benchmarks/folder_scaling.py                        # 2,000 and 8,000 photos, ~15 min
  python benchmarks/folder_scaling.py --photos 200 400 --commands train --json /tmp/fs.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # folder_pipeline, next to this file

from folder_pipeline import default_cache, generated_photos  # noqa: E402

COMMANDS = ("train", "eval", "embed")
MIB = 1024  # ru_maxrss is in KiB on Linux


def _stepped(run_dir: Path) -> bool:
    metrics = run_dir / "metrics.jsonl"
    return metrics.exists() and '"step"' in metrics.read_text()


def run(argv: list[str], log: Path, first_step_of: Path | None = None) -> dict:
    """Run one command in a child process; return its wall, peak RSS (and first step)."""
    start, first = time.perf_counter(), None
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            if first is None and first_step_of is not None and _stepped(first_step_of):
                first = time.perf_counter() - start
            time.sleep(0.05)
    # this process has only this child (and its workers) when it is reaped: the peak is theirs
    row = {"rc": proc.returncode, "wall_s": round(time.perf_counter() - start, 1)}
    row["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MIB)
    return row | ({} if first_step_of is None else {"first_step_s": first and round(first, 1)})


def measure(n: int, command: str, args) -> dict:
    """Run ``command`` on the folder of ``n`` photos in a fresh Python process of this script,
    so that its peak RSS is its own (``RUSAGE_CHILDREN`` never decreases)."""
    argv = [sys.executable, __file__, "--one", f"{n}:{command}", "--cache", str(args.cache)]
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"photos": n, "command": command, "rc": done.returncode}
    return json.loads(lines[-1])


def measure_here(n: int, command: str, cache: Path) -> dict:
    """The body of ``measure``: run the command once and return its row."""
    folder, run_dir = generated_photos(cache, n), cache / f"run-{n}"
    contrastkit = [sys.executable, "-m", "contrastkit"]
    log = cache / f"{command}-{n}.log"
    if command == "train":
        shutil.rmtree(run_dir, ignore_errors=True)
        argv = [*contrastkit, "train", "--method", "simclr", "--data", f"folder:{folder}"]
        argv += ["--backbone", "resnet18", "--steps", "4", "--batch-size", "32"]
        row = run([*argv, "--out", str(run_dir)], log, first_step_of=run_dir)
        summary = run_dir / "summary.json"
        if summary.exists():
            done = json.loads(summary.read_text())
            row["train_s"] = round(done["train_seconds"], 1)
            row["eval_s"] = round(done.get("eval", {}).get("eval_seconds", 0.0), 1)
    elif command == "eval":
        row = run([*contrastkit, "eval", str(run_dir)], log)
    else:
        out = cache / f"h-{n}.npz"
        argv = [*contrastkit, "embed", str(run_dir), "--data", f"folder:{folder}"]
        row = run([*argv, "--split", "all", "--out", str(out), "--overwrite"], log)
    return {"photos": n, "command": command, "load": round(os.getloadavg()[0], 2), **row}


def print_table(rows: list[dict], photos: list[int]) -> None:
    """Print the rows and the growth from the smallest folder to the largest."""
    head = "wall s | first step s | training s | evaluation s | peak RSS MiB | load"
    print(f"\n| command | photos | {head} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        wall = r.get("wall_s") if r.get("rc") == 0 else f"exit {r.get('rc')}"
        cells = [r["command"], f"{r['photos']:,}", wall, r.get("first_step_s", "")]
        cells += [r.get("train_s", ""), r.get("eval_s", ""), r.get("peak_rss_mib", "")]
        cells += [r.get("load", "")]
        print("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    small, large = min(photos), max(photos)
    if small == large:
        return
    print()
    by = {(r["photos"], r["command"]): r for r in rows if r.get("rc") == 0}
    for command in COMMANDS:
        a, b = by.get((small, command)), by.get((large, command))
        if a is None or b is None:
            continue
        growth = b["peak_rss_mib"] - a["peak_rss_mib"]
        line = f"{command}: peak RSS {growth:+,} MiB from {small:,} to {large:,} photos (bar < 150)"
        if command == "train":
            slower = b["wall_s"] / a["wall_s"] - 1
            line += f"; wall {slower:+.0%} (bar < +50%); first step {b['first_step_s']} s (bar 15)"
        print(line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS))
    parser.add_argument("--cache", type=Path, help="folders and runs (default: ~/.cache/...)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # N:COMMAND, run here (measure)
    args = parser.parse_args(argv)
    if any(n < 20 for n in args.photos):
        parser.error(f"--photos must each be >= 20, got {args.photos}")
    args.cache = args.cache.expanduser() if args.cache else default_cache()
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.one:
        n, command = args.one.split(":")
        print(json.dumps(measure_here(int(n), command, args.cache)), flush=True)
        return 0
    for n in args.photos:  # made before anything is timed
        generated_photos(args.cache, n)
    rows = []
    for n in args.photos:
        missing = not (args.cache / f"run-{n}" / "summary.json").exists()
        for command in COMMANDS:  # eval and embed read the run that train wrote
            if command in args.commands or (command == "train" and missing):
                print(f"{command} on {n:,} photos...", flush=True)
                rows.append(measure(n, command, args))
    print_table([r for r in rows if r["command"] in args.commands], args.photos)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A SimCLR step at a large batch on a small CPU: gradient caching + tiled NT-Xent vs plain.

Each run is ONE SimCLR training step (ResNet-18 with the CIFAR stem, the paper's projection head
2048 -> 128 with BatchNorm, NT-Xent at temperature 0.5 with ``impl="auto"``, which is tiled from
2N = 4096 on, and an SGD update) on B random 32x32 image pairs, either plain (forward + backward
of the whole batch) or with gradient caching in chunks of C samples
(``contrastkit.training.gradcache``:
one forward without a graph, the loss, then forward + backward chunk by chunk). It reports the
wall time of the step, samples/s, the CPU time of the step (all threads; less sensitive than
the wall time to other programs sharing the machine), and memory.

Memory: each run is a fresh subprocess. "base" is the resident memory after importing torch,
building the model, making the batch and one small warm-up step along the same code path (so
lazily created kernels and thread pools are not counted); "peak" is Linux's high-water mark
VmHWM during the measured step, reset after that setup through /proc/self/clear_refs; "extra"
is peak - base: what the step itself needed.

  python benchmarks/large_batch.py                    # 256, 512 plain; 256, 1024, 8192 chunked
  python benchmarks/large_batch.py --runs 8192:256 --threads 2
  python benchmarks/large_batch.py --runs 512:0      # B:C, C = 0 for a plain step

Letters used in shapes: B batch size (pairs), C chunk size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_RUNS = ["256:0", "512:0", "256:64", "1024:256", "8192:256"]


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS (Linux >= 4.0)


def one_run(batch: int, chunk: int, seed: int = 0) -> dict:
    """Run one measured SimCLR step in this process and return its numbers."""
    import torch

    from contrastkit.methods import SimCLR
    from contrastkit.models.backbones import build_backbone
    from contrastkit.training.gradcache import cached_step

    torch.manual_seed(seed)
    method = SimCLR(build_backbone("resnet18", image_size=32)).train()  # cifar stem at 32 px
    optimizer = torch.optim.SGD(method.parameters(), lr=0.1, momentum=0.9)
    views = [torch.randn(batch, 3, 32, 32), torch.randn(batch, 3, 32, 32)]  # (B, 3, 32, 32)

    def step(views: list) -> float:
        optimizer.zero_grad(set_to_none=True)
        if chunk:
            out = cached_step(method, views, chunk)
        else:
            out = method.training_step(views)
            out["loss"].backward()
        optimizer.step()
        return float(out["loss"])

    step([v[:16] for v in views])  # warm-up on the same code path: kernels, thread pools
    base = _rss_kib("VmRSS")
    _reset_peak()
    start, cpu_start = time.perf_counter(), time.process_time()
    loss = step(views)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = _rss_kib("VmHWM")
    gib = 1024**2
    return {
        "batch": batch,
        "chunk": chunk,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "samples_per_s": batch / seconds,
        "base_gib": base / gib,
        "peak_gib": peak / gib,
        "extra_gib": (peak - base) / gib,
        "loss": loss,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        nargs="+",
        default=DEFAULT_RUNS,
        metavar="B:C",
        help="batch:chunk pairs, chunk 0 = plain step (default: %(default)s)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--one", metavar="B:C", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        batch, chunk = (int(v) for v in args.one.split(":"))
        print(json.dumps(one_run(batch, chunk)))
        return

    print(
        f"{'batch':>6} {'chunk':>6} {'step s':>8} {'cpu s':>8} {'samples/s':>10} "
        f"{'base GiB':>9} {'peak GiB':>9} {'extra GiB':>10}  loss"
    )
    for run in args.runs:
        command = [sys.executable, __file__, "--one", run]
        if args.threads:
            command += ["--threads", str(args.threads)]
        result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
        if result.returncode != 0:
            print(f"{run}: failed (exit {result.returncode}): {result.stderr.strip()[-300:]}")
            continue
        r = json.loads(result.stdout.strip().splitlines()[-1])
        chunk = r["chunk"] or "-"
        print(
            f"{r['batch']:>6} {chunk:>6} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} "
            f"{r['samples_per_s']:>10.1f} "
            f"{r['base_gib']:>9.2f} {r['peak_gib']:>9.2f} {r['extra_gib']:>10.2f}  "
            f"{r['loss']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

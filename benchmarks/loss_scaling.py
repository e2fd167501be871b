"""Time and memory of dense vs tiled NT-Xent and CLIP losses as the batch grows.

For every size and implementation it measures one forward + backward pass (best of --repeats)
and the peak memory beyond the inputs, and compares the time with a "floor": the matrix-product
FLOPs and exp() calls that implementation must do, at the torch.mm GFLOP/s and torch.exp rate
measured on the same device.

  python benchmarks/loss_scaling.py                       # CPU, 2N in 512 4096 16384 65536
  python benchmarks/loss_scaling.py --device cuda --sizes 16384 65536 131072

Memory. CPU: each case runs in a fresh subprocess; extra memory = peak RSS minus the RSS after
importing torch, allocating the inputs and one tiny warm-up call of the same loss (so lazily
loaded kernels and thread pools are not counted). The peak is Linux's per-process high-water
mark VmHWM (the value behind getrusage's ru_maxrss), reset after that setup through
/proc/self/clear_refs; ru_maxrss itself would also hold the parent's peak, inherited at exec.
CUDA: torch.cuda.max_memory_allocated minus the memory allocated before the call.

Work counted for the floor (M = 2N views for NT-Xent, N pairs for CLIP, D width; a "matmul" is
one full M x M x D product, 2 * M^2 * D FLOPs):
  NT-Xent dense: 3 matmuls (logits, 2 gradients), 2 M^2 exps (softmax, log-softmax backward).
  NT-Xent tiled: 2 matmuls (only the upper triangle of the symmetric matrix: 1/2 forward,
                 1/2 recompute, 1 for both gradients), M^2 exps.
  CLIP dense:    3 matmuls, 4 N^2 exps (two directions).
  CLIP tiled:    4 matmuls (forward, recompute, 2 gradients); on CPU, where reading the
                 logit_scale tensor costs nothing, one exp per logit serves both directions:
                 2 N^2 exps; on a GPU the scale is not read (no sync), each direction shifts by
                 its own maximum: 4 N^2 exps.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch

from contrastkit.losses import clip_loss, nt_xent
from contrastkit.losses.tiled import resolve_tile_size

# (matmuls, exps per logit) as listed in the module docstring
WORK = {
    ("nt_xent", "dense"): (3, 2),
    ("nt_xent", "tiled"): (2, 1),
    ("clip", "dense"): (3, 4),
    ("clip", "tiled"): (4, 2),  # 4 exps per logit on CUDA, see main()
}
# Dense peak memory in float32 logit matrices: 3.0 and 4.1 measured at 2N = 16384 on CPU and
# on an H200, rounded up.
DENSE_MATRICES = {"nt_xent": 3.5, "clip": 4.5}


def matrix_side(loss: str, size: int) -> int:
    """Return the side of the logit matrix: 2N for NT-Xent, N for CLIP."""
    return size if loss == "nt_xent" else size // 2


def make_inputs(size: int, dim: int, device: str) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    n = size // 2
    z1 = torch.randn(n, dim, generator=generator).to(device).requires_grad_()
    z2 = torch.randn(n, dim, generator=generator).to(device).requires_grad_()
    scale = torch.tensor(1 / 0.07, device=device, requires_grad=True)
    return z1, z2, scale


def step(loss: str, impl: str, inputs, tile: int) -> None:
    z1, z2, scale = inputs
    if loss == "nt_xent":
        value = nt_xent(z1, z2, 0.5, impl=impl, tile_size=tile)
    else:
        value = clip_loss(z1, z2, scale, impl=impl, tile_size=tile)
    value.backward()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_case(loss: str, impl: str, size: int, dim: int, device: str, tile: int, repeats: int):
    """Return (best seconds of forward + backward, peak extra bytes) for one case."""
    step(loss, impl, make_inputs(64, dim, device), tile)  # load kernels, thread pools
    inputs = make_inputs(size, dim, device)
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = reset_peak_rss()
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        for x in inputs:
            x.grad = None
        start = time.perf_counter()
        step(loss, impl, inputs, tile)
        sync(device)
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent > 30:
            break
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = peak_rss() - base
    return best, peak


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> int:
    """Reset the peak RSS to the current RSS where Linux allows it; return the current RSS bytes.

    getrusage's ru_maxrss also holds the peak inherited from the parent at exec (the benchmark
    process itself), so the per-process high-water mark VmHWM, reset by writing 5 to
    /proc/self/clear_refs, is read instead; elsewhere ru_maxrss is the fallback.
    """
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return _status_kb("VmRSS") * 1024


def peak_rss() -> int:
    """Return the peak RSS in bytes since the last reset (VmHWM, else ru_maxrss)."""
    hwm = _status_kb("VmHWM")
    return (
        hwm * 1024 if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )


def rates(device: str) -> tuple[float, float]:
    """Measure torch.mm FLOP/s (4096 x 128 x 4096) and torch.exp elements/s on ``device``."""
    a, b = torch.randn(4096, 128, device=device), torch.randn(4096, 128, device=device)
    x = torch.rand(4096, 4096, device=device) * -4
    y = torch.empty_like(x)

    def best_of(fn, count=5):
        fn()
        sync(device)
        times = []
        for _ in range(count):
            start = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - start)
        return min(times)

    mm_s = best_of(lambda: torch.mm(a, b.T, out=y))
    exp_s = best_of(lambda: torch.exp(x, out=y))
    return 2 * 4096 * 4096 * 128 / mm_s, x.numel() / exp_s


def fmt_bytes(n: float) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n:.0f} B"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[512, 4096, 16384, 65536],
        help="numbers of views 2N (CLIP: N image-text pairs)",
    )
    parser.add_argument("--dim", type=int, default=128, help="embedding width D")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--losses", nargs="+", default=["nt_xent", "clip"], choices=["nt_xent", "clip"]
    )
    parser.add_argument(
        "--tile-size",
        type=int,
        default=None,
        help="rows/columns per tile (default: the library's default for the device)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is shown")
    parser.add_argument(
        "--max-dense-gb",
        type=float,
        default=12.0,
        help="skip dense cases whose logit matrices would need more than this",
    )
    parser.add_argument("--case", nargs=3, metavar=("LOSS", "IMPL", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    device_type = "cuda" if args.device.startswith("cuda") else "cpu"
    tile = resolve_tile_size(args.tile_size, torch.device(device_type))
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available on this machine; use --device cpu", file=sys.stderr)
        return 2
    if args.case:  # child process: one case, JSON on stdout
        loss, impl, size = args.case[0], args.case[1], int(args.case[2])
        seconds, peak = run_case(loss, impl, size, args.dim, args.device, tile, args.repeats)
        print(json.dumps({"seconds": seconds, "peak": peak}))
        return 0

    mm_rate, exp_rate = rates(args.device)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    print(
        f"device: {args.device} ({name or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, D = {args.dim}, tile = {tile}"
    )
    print(f"measured: torch.mm {mm_rate / 1e9:.0f} GFLOP/s, torch.exp {exp_rate / 1e9:.2f} G/s\n")
    print("| loss | 2N | impl | fwd+bwd (s) | extra memory | floor (s) | measured/floor |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for loss in args.losses:
        for size in args.sizes:
            side = matrix_side(loss, size)
            for impl in ("dense", "tiled"):
                matmuls, exps = WORK[(loss, impl)]
                if (loss, impl, device_type) == ("clip", "tiled", "cuda"):
                    exps = 4
                floor = matmuls * 2 * side**2 * args.dim / mm_rate + exps * side**2 / exp_rate
                need = DENSE_MATRICES[loss] * side**2 * 4
                if impl == "dense" and need > args.max_dense_gb * 1e9:
                    print(
                        f"| {loss} | {size} | dense | skipped (needs ~{fmt_bytes(need)}) "
                        f"| | {floor:.3f} | |"
                    )
                    continue
                if args.device.startswith("cuda"):
                    seconds, peak = run_case(
                        loss, impl, size, args.dim, args.device, tile, args.repeats
                    )
                else:
                    command = [
                        sys.executable,
                        __file__,
                        "--case",
                        loss,
                        impl,
                        str(size),
                        "--dim",
                        str(args.dim),
                        "--device",
                        args.device,
                        "--tile-size",
                        str(tile),
                        "--repeats",
                        str(args.repeats),
                    ]
                    out = subprocess.run(command, capture_output=True, text=True, check=True)
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    seconds, peak = result["seconds"], result["peak"]
                print(
                    f"| {loss} | {size} | {impl} | {seconds:.3f} | {fmt_bytes(peak)} "
                    f"| {floor:.3f} | {seconds / floor:.2f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

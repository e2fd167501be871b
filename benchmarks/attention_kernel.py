"""Forward + backward time of one attention call on CPU: PyTorch's fused kernel against explicit.

    python benchmarks/attention_kernel.py                 # bf16, four sequence lengths
    python benchmarks/attention_kernel.py --dtype float32 --repeats 10

``contrastkit.models.vit.attend`` computes softmax attention explicitly (matmul, softmax, matmul)
on a CPU in bf16/fp16 for sequences up to ``EXPLICIT_ATTENTION_MAX_TOKENS`` tokens, and through
``torch.nn.functional.scaled_dot_product_attention`` (the fused flash-attention kernel)
otherwise. This script times both forms for shapes (B, K, T, D/K) of the ViTs contrastkit
trains: the ``dino-vit-shapes`` recipe's 65 tokens, and ViT-S/16 at 224 px (197 tokens), 384 px
(577) and 512 px (1,025), with batch sizes that keep the work per call similar. Each time is
the median over ``--repeats`` calls after two untimed ones; the explicit form also keeps the
(B, K, T, T) weights for the backward pass, whose size is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from contrastkit.models.vit import attention_weights

SHAPES = ((128, 3, 65, 32), (32, 6, 197, 64), (8, 6, 577, 64), (4, 6, 1025, 64))


def explicit(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The explicit form of ``attend`` at any length: (B, K, T, d) -> (B, K, T, d)."""
    return attention_weights(q, k) @ v


def time_call(fn, shape: tuple[int, ...], dtype: torch.dtype, repeats: int) -> float:
    """Return the median milliseconds of ``fn(q, k, v)`` forward + backward at ``shape``."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(3))
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        fn(q, k, v).float().sum().backward()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per form and shape")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, {args.dtype}, load {load}\n")
    print("| (B, K, T, D/K) | fused ms | explicit ms | fused / explicit | weights kept MiB |")
    print("|---|---:|---:|---:|---:|")
    for shape in SHAPES:
        fused = time_call(F.scaled_dot_product_attention, shape, dtype, args.repeats)
        mine = time_call(explicit, shape, dtype, args.repeats)
        B, K, T, _ = shape
        kept = B * K * T * T * torch.finfo(dtype).bits / 8 / 2**20
        print(f"| {shape} | {fused:.1f} | {mine:.1f} | {fused / mine:.2f}x | {kept:.0f} |")


if __name__ == "__main__":
    main()

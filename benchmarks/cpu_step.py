"""Images/s of a shapes training step on CPU: fp32, bf16 autocast, channels_last, compile.

    python benchmarks/cpu_step.py                      # every variant, 3 repeats, 20 timed steps
    python benchmarks/cpu_step.py --variants fp32 bf16 --steps 10 --repeats 1
    python benchmarks/cpu_step.py --method dino --backbone vit \
        --variants fp32 bf16 bf16+fused_attention      # the dino-vit-shapes recipe's ViT step

The step is that of ``contrastkit train --data shapes`` (by default SimCLR with its built-in
recipe ``simclr-shapes``: the small CNN, batch 128, two views; ``--method``/``--backbone`` pick
another built-in recipe, such as ``dino-vit-shapes``), built by
``contrastkit.training.trainer.prepare`` and driven by the trainer's own ``TrainingState``
(optimizer, schedule, autocast), in this process. The views of every step are made once,
before any timing (the view pipeline is ``benchmarks/throughput.py``'s subject), so every
variant trains on identical batches from identical weights; a step is forward, backward and
optimizer update. After ``--warmup`` untimed steps (where ``torch.compile`` compiles), the
next ``--steps`` are timed; images/s counts samples (each with its two views) per second.
The variants take turns within each repeat, so a change of load hits them alike; on a shared
machine the best repeat is the least disturbed one, and the speed-ups compare best with best.

Variants:

- ``fp32``: today's default on CPU (``--amp off``);
- ``bf16``: ``--amp bf16``, ``torch.autocast("cpu", dtype=torch.bfloat16)``: fast where the
  CPU has bf16 instructions (``avx512_bf16``, AMX), slow emulation elsewhere;
- ``channels_last``: the model and its inputs in NHWC memory format (fp32);
- ``bf16+channels_last``: both;
- ``compile``: ``torch.compile`` of the backbone (fp32); a failure is reported, not raised;
- ``bf16+fused_attention``: bf16 with every ViT attention call through PyTorch's fused kernel
  (``EXPLICIT_ATTENTION_MAX_TOKENS = 0``), as before the explicit short-sequence form; the same
  as ``bf16`` for a CNN.

Equal quality: the loss after the same steps from the same seed is printed next to each
variant (bf16 rounds activations to 8 bits of mantissa, so it differs slightly from fp32).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from contrastkit.models import vit
from contrastkit.training.batches import mix_seed, step_batches
from contrastkit.training.config import TrainConfig
from contrastkit.training.presets import with_recipe
from contrastkit.training.state import RunLength, TrainingState
from contrastkit.training.trainer import prepare

VARIANTS = (
    "fp32",
    "bf16",
    "channels_last",
    "bf16+channels_last",
    "compile",
    "bf16+fused_attention",
)


def cpu_flags() -> list[str]:
    """Return the bf16-related flags of this CPU (``avx512_bf16``, ``amx_bf16``...)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    words = set(text.split())
    return sorted(w for w in words if w == "avx512_bf16" or w.startswith("amx"))


def build(variant: str, seed: int, method: str = "simclr", backbone: str | None = None):
    """Return (config, dataset, view_fn, method, state, length) of the run under ``variant``."""
    amp = "bf16" if "bf16" in variant else "off"
    given = {"method": method, "data": "shapes", "seed": seed, "amp": amp, "device": "cpu"}
    if backbone is not None:
        given["backbone"] = backbone
    config = TrainConfig.from_dict(with_recipe(given | {"eval": False, "progress": False}))
    config, dataset, method, view_fn = prepare(config)
    if "channels_last" in variant:
        method = method.to(memory_format=torch.channels_last)
    method.train()
    length = RunLength.of(config, len(dataset))
    state = TrainingState(method, config, length, torch.device("cpu"))
    method.setup(length.total, length.per_epoch)
    return config, dataset, view_fn, method, state, length


def make_views(config, dataset, view_fn, steps: int) -> list[list[torch.Tensor]]:
    """Return the views of the first ``steps`` steps of the run (the trainer's batches)."""
    batches = step_batches(
        dataset,
        view_fn,
        seed=config.seed,
        start_step=0,
        total_steps=steps,
        batch_size=config.batch_size,
        device=torch.device("cpu"),
    )
    return [list(batch.views) for batch in batches]


def run_variant(
    variant: str,
    views: list,
    warmup: int,
    seed: int,
    method: str = "simclr",
    backbone: str | None = None,
) -> dict:
    """Train ``len(views)`` steps under ``variant``; return images/s (timed steps) and losses."""
    config, _, _, model, state, length = build(variant, seed, method, backbone)
    if variant == "compile":
        model.backbone = torch.compile(model.backbone)
    channels_last = "channels_last" in variant
    losses, start = [], None
    explicit = vit.EXPLICIT_ATTENTION_MAX_TOKENS
    if variant == "bf16+fused_attention":
        vit.EXPLICIT_ATTENTION_MAX_TOKENS = 0  # every attention call through the fused kernel
    try:
        for step, step_views in enumerate(views):
            if step == warmup:
                start = time.perf_counter()
            if channels_last:
                step_views = [v.contiguous(memory_format=torch.channels_last) for v in step_views]
            torch.manual_seed(mix_seed(config.seed, step, -3))  # as the trainer does
            state.optimizer.zero_grad(set_to_none=True)
            with state.autocast():
                out = model.training_step(step_views)
            state.backward(out["loss"])
            state.optimizer_step(model.default_clip_grad, before=model.before_optimizer_step)
            model.after_step(step, length.total, out)
            state.step += 1
            losses.append(float(out["loss"].detach()))
    finally:
        vit.EXPLICIT_ATTENTION_MAX_TOKENS = explicit
    seconds = time.perf_counter() - start
    timed = len(views) - warmup
    return {"images_per_s": timed * config.batch_size / seconds, "losses": losses}


def measure(args: argparse.Namespace) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Run every variant once per repeat, interleaved (a change of load hits them alike).

    Returns:
        (the runs of each variant, the error of each variant that failed).
    """
    runs: dict[str, list[dict]] = {v: [] for v in args.variants}
    failed: dict[str, str] = {}
    for _ in range(args.repeats):
        for variant in (v for v in args.variants if v not in failed):
            try:
                runs[variant].append(
                    run_variant(
                        variant, args.views, args.warmup, args.seed, args.method, args.backbone
                    )
                )
            except Exception as err:  # noqa: BLE001 (torch.compile can fail in many ways)
                failed[variant] = f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"
    return runs, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="runs of every variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="simclr", help="method of the recipe (simclr)")
    parser.add_argument("--backbone", default=None, help="backbone of the recipe (its default)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config, dataset, view_fn, *_ = build("fp32", args.seed, args.method, args.backbone)
    start = time.perf_counter()
    args.views = make_views(config, dataset, view_fn, args.warmup + args.steps)
    views_per_s = len(args.views) * config.batch_size / (time.perf_counter() - start)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags "
        f"{cpu_flags() or 'none'}; load average {load}; recipe {config.recipe}, "
        f"batch {config.batch_size}, "
        f"{args.warmup} warm-up + {args.steps} timed steps, {args.repeats} repeats; making the "
        f"views (the trainer's batches, not in the step times): {views_per_s:.0f} images/s\n"
    )
    print(
        "| variant | images/s (each repeat) | median | best | best vs fp32 best "
        "| loss at the last step |"
    )
    print("|---|---|---:|---:|---:|---:|")
    runs, failed = measure(args)
    fp32 = [r["images_per_s"] for r in runs.get("fp32", [])]
    reference = max(fp32) if fp32 else None  # the least disturbed repeat, on a shared machine
    for variant in args.variants:
        if variant in failed:
            print(f"| {variant} | failed: {failed[variant]} | | | | |")
            continue
        speeds = [r["images_per_s"] for r in runs[variant]]
        median = statistics.median(speeds)
        ratio = f"{max(speeds) / reference:.2f}x" if reference else "–"
        each = ", ".join(f"{s:.0f}" for s in speeds)
        loss = runs[variant][0]["losses"][-1]
        print(f"| {variant} | {each} | {median:.0f} | {max(speeds):.0f} | {ratio} | {loss:.4f} |")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average at the end: {load}")


if __name__ == "__main__":
    main()

"""Images per second of the augmentation pipelines and of a full SimCLR training step.

Measures, on 32x32 ``shapes`` scenes with the SimCLR recipe (2 views per image):

1. the per-sample pipeline (``contrastkit.transforms`` on torchvision v2, through
   ``contrastkit.training.batches.epoch_batches``: per-sample seeding, DataLoader, collation), with
   ``num_workers`` 0 and 2;
2. the batched pipeline (``contrastkit.transforms.batched``), which the trainer uses for image
   recipes: through ``epoch_batches`` as in training (per-sample draws, DataLoader, views made
   on ``--device``), and alone, starting from the uint8 images already on that device;
3. one SimCLR training step (``contrastkit.methods.SimCLR``: ResNet-18 with the CIFAR stem,
   2048-128 projection head, NT-Xent; forward + backward + AdamW) on ready-made views, and the
   same step with the small ``cnn`` backbone that CPU recipes use.

The first batch of the batched pipeline and the first step are warm-ups and are not timed; the
loader rows are timed over one whole epoch of exactly the timed batches, from the loader's start
(worker start-up included, as prefetching would otherwise hide work). Images/s counts source
images (each gives 2 views). "CPU ms" is the processor time spent (main process, plus the
DataLoader workers), which stays meaningful when other jobs share the machine and inflate
wall-clock times.
The last lines say which pipeline is faster and how much of a serial step the data would take.

  python benchmarks/throughput.py                       # CPU, batch 256, ~2 min on 2 idle cores
  python benchmarks/throughput.py --device cuda --steps 20 --pipeline-batches 20
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import torch
from torch.utils.data import Subset

from contrastkit.data.shapes import build_shapes
from contrastkit.methods import SimCLR
from contrastkit.models.backbones import build_backbone
from contrastkit.training.batches import epoch_batches
from contrastkit.transforms import build_batched_view_fn, build_view_fn
from contrastkit.transforms.batched import batched_view_fn


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_seconds() -> float:
    """Return CPU seconds (user + system) of this process and of its reaped children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def time_loader(dataset, view_fn, batch_size: int, batches: int, workers: int, device):
    """Return (wall, CPU) seconds per batch of ``epoch_batches`` over one whole epoch.

    The epoch holds exactly ``batches`` batches, so prefetching workers do no untimed work, and
    the workers have exited (their CPU time is counted) when the epoch ends.
    """
    subset = Subset(dataset, range(batch_size * batches))
    loader = epoch_batches(
        subset, view_fn, seed=0, epoch=0, batch_size=batch_size, num_workers=workers, device=device
    )
    sync(device)
    wall, cpu = time.perf_counter(), cpu_seconds()
    done = [views[0].shape[0] for views in loader]
    sync(device)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    assert done == [batch_size] * batches
    return wall / batches, cpu / batches


def time_batched(dataset, batch_size: int, batches: int, device: torch.device):
    """Return (wall, CPU) seconds per batch of the batched pipeline on ``device``."""
    size = dataset.input_shape[-1]
    views = batched_view_fn("pair", dataset.input_shape)
    images = dataset.images.to(device)  # (N, 3, S, S) uint8, resident on the device
    generator = torch.Generator().manual_seed(0)
    wall = cpu = 0.0
    for i in range(batches + 1):  # the first is a warm-up
        index = torch.randint(len(images), (batch_size,), generator=generator).to(device)
        sync(device)
        w, c = time.perf_counter(), time.process_time()
        out = views(images[index].float().div_(255.0))
        sync(device)
        if i:
            wall, cpu = wall + time.perf_counter() - w, cpu + time.process_time() - c
    assert out[0].shape == (batch_size, 3, size, size)
    return wall / batches, cpu / batches


def time_train_step(backbone_name: str, batch_size: int, size: int, steps: int, device):
    """Return (wall, CPU) seconds per SimCLR step on ready-made views (after a warm-up step)."""
    torch.manual_seed(0)
    options = {"cifar_stem": True} if backbone_name.startswith("resnet") else {}
    backbone = build_backbone(backbone_name, image_size=size, **options)
    method = SimCLR(backbone).to(device)
    optimizer = torch.optim.AdamW(method.parameters(), lr=1e-3, weight_decay=1e-6)
    views = [torch.rand(batch_size, 3, size, size, device=device) for _ in range(2)]
    wall = cpu = 0.0
    for i in range(steps + 1):
        sync(device)
        w, c = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        method.training_step(views)["loss"].backward()
        optimizer.step()
        sync(device)
        if i:
            wall, cpu = wall + time.perf_counter() - w, cpu + time.process_time() - c
    return wall / steps, cpu / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="device of the batched pipeline and step")
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch")
    parser.add_argument("--steps", type=int, default=1, help="timed training steps")
    parser.add_argument(
        "--pipeline-batches", type=int, default=4, help="timed batches per pipeline row"
    )
    parser.add_argument(
        "--backbones", nargs="+", default=["resnet18", "cnn"], help="backbones of the step rows"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers to try"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    B = args.batch_size
    dataset = build_shapes(train=True, n=max(4000, B * (args.pipeline_batches + 1)))
    size = dataset.input_shape[-1]

    rows = []  # (what, where, wall seconds, CPU seconds) per batch
    per_sample, batched = build_view_fn("pair", dataset), build_batched_view_fn("pair", dataset)
    cpu = torch.device("cpu")
    for workers in args.workers:
        wall, cpu_s = time_loader(dataset, per_sample, B, args.pipeline_batches, workers, cpu)
        rows.append((f"per-sample v2 pipeline, num_workers={workers}", "cpu", wall, cpu_s))
    n_loader = len(rows)
    trainer = time_loader(dataset, batched, B, args.pipeline_batches, 0, device)
    rows.append(("batched pipeline, trainer's loader, num_workers=0", device.type, *trainer))
    resident = time_batched(dataset, B, args.pipeline_batches, device)
    rows.append(("batched pipeline alone, images on the device", device.type, *resident))
    steps = {}
    for name in args.backbones:
        steps[name] = time_train_step(name, B, size, args.steps, device)
        rows.append((f"SimCLR step, {name} (fwd+bwd+AdamW)", device.type, *steps[name]))

    load = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, "
        f"load average {load:.1f} at the end; batch {B}, {size}x{size} shapes, 2 views per image"
    )
    print()
    print("| what | device | images/s | ms per batch | CPU ms per batch |")
    print("|---|---|---:|---:|---:|")
    for what, where, wall, cpu in rows:
        print(f"| {what} | {where} | {B / wall:,.0f} | {1000 * wall:,.0f} | {1000 * cpu:,.0f} |")
    print()
    best_per_sample = min(rows[:n_loader], key=lambda r: r[2])
    pipelines = {best_per_sample[0]: best_per_sample[2], rows[n_loader][0]: trainer[0]}
    best_name = min(pipelines, key=pipelines.get)
    print(f"Faster pipeline here (wall clock): {best_name}. Data share of a serial step:")
    for name, (step, _) in steps.items():
        shares = ", ".join(f"{100 * t / (t + step):.0f}% with {p}" for p, t in pipelines.items())
        print(f"- {name}: {shares}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

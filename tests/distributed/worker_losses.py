"""Worker launched by torchrun: every loss on this process's rows of one global batch.

``python -m torch.distributed.run --nproc_per_node W tests/distributed/worker_losses.py OUT``
writes ``OUT/rank{r}.pt``: for each case, the local loss and the gradients of the local inputs.
test_distributed_exactness.py runs the same ``compute`` on the whole batch in one process and
compares. The cases are built identically on every process from fixed seeds.

Letters used in shapes: N global batch, V views, G global views, K outputs, D width.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import torch
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.losses import (
    barlow_twins_loss,
    clip_loss,
    dino_loss,
    info_nce,
    nt_xent,
    vicreg_loss,
)
from contrastkit.training import ddp
from contrastkit.training.sync_batchnorm import convert_sync_batch_norm

N = 8  # global batch, split over the processes


def global_inputs(dtype: torch.dtype) -> dict[str, Tensor]:
    """Return the global batch of every case; rows (dim 0, dim 1 for DINO) are samples."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)

    return {
        "z1": randn(N, 5),
        "z2": randn(N, 5),
        "queue": randn(6, 5),
        "image": randn(N, 4),
        "text": randn(N, 4),
        "log_scale": torch.tensor(2.0, dtype=dtype),
        "b1": randn(N, 4) * 2 + 1,
        "b2": randn(N, 4) + randn(N, 1),
        "student": randn(4, N, 6),  # (V, N, K): 2 global + 2 local views
        "teacher": randn(2, N, 6),  # (G, N, K)
        "center": randn(6) * 0.1,
        "images": randn(N, 3, 2, 2),
        "weights": randn(N, 3, 2, 2),
    }


def _leaf(x: Tensor) -> Tensor:
    return x.detach().clone().requires_grad_()


def compute(inputs: dict[str, Tensor], lo: int, hi: int) -> dict[str, dict[str, Tensor]]:
    """Compute every case on rows [lo, hi) and return losses and input gradients."""
    rows = {k: v[lo:hi] for k, v in inputs.items() if k not in ("queue", "log_scale", "center")}
    rows["student"], rows["teacher"] = inputs["student"][:, lo:hi], inputs["teacher"][:, lo:hi]
    results: dict[str, dict[str, Tensor]] = {}

    def case(name: str, fn, **tensors: Tensor) -> None:
        leaves = {k: _leaf(v) for k, v in tensors.items()}
        loss = fn(**leaves)
        loss.backward()
        results[name] = {"loss": loss.detach(), **{k: v.grad for k, v in leaves.items()}}

    for impl in ("dense", "tiled"):
        case(
            f"nt_xent_{impl}",
            lambda z1, z2, impl=impl: nt_xent(z1, z2, 0.5, impl=impl, tile_size=3),
            z1=rows["z1"],
            z2=rows["z2"],
        )
        case(
            f"clip_{impl}",
            lambda image, text, log_scale, impl=impl: clip_loss(
                image, text, log_scale.exp(), impl=impl, tile_size=3
            ),
            image=rows["image"],
            text=rows["text"],
            log_scale=inputs["log_scale"],
        )
        case(
            f"moco_v3_{impl}",
            lambda z1, z2, impl=impl: info_nce(z1, z2, None, 0.2, impl=impl, tile_size=3),
            z1=rows["z1"],
            z2=rows["z2"],
        )
        case(
            f"moco_queue_{impl}",
            lambda z1, z2, queue, impl=impl: info_nce(z1, z2, queue, 0.2, impl=impl, tile_size=4),
            z1=rows["z1"],
            z2=rows["z2"],
            queue=inputs["queue"],
        )
    case(
        "barlow_twins", lambda b1, b2: barlow_twins_loss(b1, b2, 5e-3), b1=rows["b1"], b2=rows["b2"]
    )
    case("vicreg", lambda b1, b2: vicreg_loss(b1, b2), b1=rows["b1"], b2=rows["b2"])
    case(
        "dino",
        lambda student, teacher: dino_loss(student, teacher, inputs["center"], 0.04, 0.1),
        student=rows["student"],
        teacher=rows["teacher"],
    )
    # DINO's center: EMA of the teacher's batch mean, the mean taken over every process
    batch_mean = rows["teacher"].mean(dim=(0, 1))  # (K,)
    center = inputs["center"] * 0.9 + distributed.all_reduce_mean_(batch_mean.clone()) * 0.1
    results["dino_center"] = {"loss": center}
    results["sync_batch_norm"] = _batch_norm(rows["images"], rows["weights"], hi - lo)
    return results


def _batch_norm(images: Tensor, weights: Tensor, n: int) -> dict[str, Tensor]:
    """BatchNorm over the global batch: SyncBatchNorm on W processes, BatchNorm on one."""
    bn = nn.BatchNorm2d(3, momentum=0.5).to(images.dtype)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, -0.5]))
        bn.bias.copy_(torch.tensor([0.1, 0.0, 0.3]))
    if distributed.is_distributed():
        bn = convert_sync_batch_norm(bn)
    x = _leaf(images)
    loss = (bn(x) * weights).sum() / n  # mean over local rows; the global loss is their mean
    loss.backward()
    return {
        "loss": loss.detach(),
        "images": x.grad,
        "weight": bn.weight.grad,
        "bias": bn.bias.grad,
        "running_mean": bn.running_mean,
        "running_var": bn.running_var,
    }


def helpers() -> dict[str, Tensor]:
    """Exercise the small collectives: gradient averaging, metric means, no-grad gather."""
    r = distributed.rank()
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))
    a.grad = torch.full((2,), float(r + 1))
    b.grad = torch.ones(1) * 4 if r == 1 else None  # a gradient on one process only
    ddp.average_gradients_([a, b])
    metrics = distributed.mean_over_processes({"b": float(r), "a": 10.0 * r})
    return {
        "grad_a": a.grad,
        "grad_b": b.grad,
        "metrics": torch.tensor([metrics["a"], metrics["b"]]),
        "gathered": distributed.gather_nograd(torch.tensor([[r, r]])),
    }


def main(out: Path) -> None:
    ddp.init_from_env("gloo", timeout=timedelta(seconds=60))
    r, W = distributed.rank(), distributed.world_size()
    n = N // W
    results = {
        str(dtype): compute(global_inputs(dtype), r * n, (r + 1) * n)
        for dtype in (torch.float32, torch.float64)
    }
    results["helpers"] = helpers()
    torch.save(results, out / f"rank{r}.pt")
    ddp.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""What NT-Xent measures, on five 2-D clusters and no training at all.

A batch of 2N = 32 views (16 points, two noisy views each) gives every view 1 positive and
2N - 2 = 30 negatives. If the embedding carries no information the positive is one of 31
equally likely candidates and the loss is log(2N - 1) = log 31; that is also the most mutual
information InfoNCE can certify with 30 negatives (info_nce_bound). Anything lower means the
embedding tells a view's partner apart from the others.

    python examples/toy_info_nce.py
"""

from __future__ import annotations

import math

import torch
from torch import nn

from contrastkit.losses import info_nce_bound, nt_xent

CENTERS = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [0.0, -2.5], [3.0, -1.0], [-3.0, -1.0]])
POINTS_PER_CLUSTER, CLUSTER_STD, VIEW_STD, BATCH, DRAWS = 20, 0.3, 0.3, 16, 20
TEMPERATURE = 0.5


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    points = CENTERS.repeat_interleave(POINTS_PER_CLUSTER, 0)  # (100, 2)
    points = points + CLUSTER_STD * torch.randn(points.shape, generator=generator)
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 4))  # random, untrained

    random_128, random_4, encoded = [], [], []
    with torch.no_grad():
        for _ in range(DRAWS):
            batch = points[torch.randperm(len(points), generator=generator)[:BATCH]]  # (16, 2)
            view1 = batch + VIEW_STD * torch.randn(batch.shape, generator=generator)
            view2 = batch + VIEW_STD * torch.randn(batch.shape, generator=generator)
            encoded.append(nt_xent(encoder(view1), encoder(view2), TEMPERATURE).item())
            for dim, out in ((128, random_128), (4, random_4)):
                u1 = torch.randn(BATCH, dim, generator=generator)  # nt_xent normalises
                u2 = torch.randn(BATCH, dim, generator=generator)
                out.append(nt_xent(u1, u2, TEMPERATURE).item())

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    views = 2 * BATCH
    rows = [
        (f"log(2N - 1) = log {views - 1}", math.log(views - 1)),
        (f"info_nce_bound(2N - 2 = {views - 2})", info_nce_bound(views - 2)),
        ("NT-Xent, random unit vectors, D = 128", mean(random_128)),
        ("NT-Xent, random unit vectors, D = 4", mean(random_4)),
        ("NT-Xent, random untrained encoder 2-8-4", mean(encoded)),
    ]
    print(f"2N = {views} views, temperature {TEMPERATURE}, mean over {DRAWS} random batches")
    for label, value in rows:
        print(f"{label:<42}{value:.3f}")
    print(
        "Random vectors sit at log 31 (plus ~2/D from the spread of their cosines); the encoder is "
        "lower because two noisy views of one point land close together even through a random "
        "map, so the positive already out-scores most negatives."
    )


if __name__ == "__main__":
    main()

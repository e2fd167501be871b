"""The toy data of the InfoNCE experiment: five Gaussian clusters of 2-D points.

Clusters are centred at (2, 2), (-2, 2), (0, -2.5), (3, -1) and (-3, -1) with standard deviation
0.3 and 20 points each (N = 100). The training and held-out splits are drawn independently from
the same clusters. Views are made by ``contrastkit.transforms`` (Gaussian noise, std 0.3).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

CENTERS: tuple[tuple[float, float], ...] = (
    (2.0, 2.0),
    (-2.0, 2.0),
    (0.0, -2.5),
    (3.0, -1.0),
    (-3.0, -1.0),
)
POINTS_PER_CLUSTER = 20
CLUSTER_STD = 0.3
# the held-out split uses a different stream of the same generator family
_TEST_SEED_OFFSET = 1_000_003


class ToyPoints(Dataset):
    """Labelled 2-D points; ``ds[i] -> (x: (2,), y: int)``.

    Args:
        points: (N, 2) coordinates.
        labels: (N,) cluster index of each point.
    """

    kind = "points"
    name = "toy"
    input_shape = (2,)

    def __init__(self, points: Tensor, labels: Tensor) -> None:
        if points.ndim != 2 or points.shape[1] != 2 or labels.shape != points.shape[:1]:
            raise ValueError(
                f"points must be (N, 2) with labels (N,), got {tuple(points.shape)} "
                f"and {tuple(labels.shape)}"
            )
        self.points = points.float()
        self.labels = labels.long()
        self.class_names = [f"({cx:g}, {cy:g})" for cx, cy in CENTERS]

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.points[index], int(self.labels[index])


def make_clusters(
    seed: int = 0, points_per_cluster: int = POINTS_PER_CLUSTER, std: float = CLUSTER_STD
) -> tuple[Tensor, Tensor]:
    """Sample the five clusters: returns points (5 * n, 2) and labels (5 * n,), cluster-major."""
    generator = torch.Generator().manual_seed(seed)
    centers = torch.tensor(CENTERS)  # (5, 2)
    noise = torch.randn(len(CENTERS), points_per_cluster, 2, generator=generator)
    points = (centers[:, None, :] + std * noise).reshape(-1, 2)
    labels = torch.arange(len(CENTERS)).repeat_interleave(points_per_cluster)
    return points, labels


def build_toy(
    path: str | None = None, *, train: bool = True, seed: int = 0, download: bool = False
) -> ToyPoints:
    """Build the training (``train=True``) or held-out split of the toy clusters.

    Args:
        path: unused (the data is generated); must be None.
        train: which split.
        seed: seeds the points; the two splits never share a point.
        download: unused.
    """
    if path is not None:
        raise ValueError(f"the toy dataset takes no path, got {path!r}")
    points, labels = make_clusters(seed if train else seed + _TEST_SEED_OFFSET)
    return ToyPoints(points, labels)

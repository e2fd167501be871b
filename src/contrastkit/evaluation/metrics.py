"""How good is a representation? Metrics on feature matrices, plus a helper that embeds a dataset.

Every metric takes plain feature matrices, so the same numbers can be reported for a trained
encoder, a randomly initialised one and the raw input (flattened pixels or points).

- separation: mean cosine similarity of same-label pairs minus that of different-label pairs,
  over all pairs i < j (computed exactly in O(N F) from per-class sums).
- kNN accuracy: weighted k-nearest neighbours on cosine similarity, k = 20, weights
  exp(similarity / 0.07), as in DINO (Caron et al. 2021) and Wu et al. 2018.
- linear-probe accuracy: logistic regression on standardised frozen features
  (``contrastkit.evaluation.linear_probe``: scikit-learn, or torch for large problems).
- alignment and uniformity: Wang & Isola 2020, "Understanding Contrastive Representation
  Learning through Alignment and Uniformity on the Hypersphere".
- effective rank: exp of the entropy of the normalised singular values (Roy & Vetterli 2007),
  computed on the uncentred embeddings as RankMe does (Garrido et al. 2023).
- ``unevaluable``: which of these a small or unlabelled split cannot support, and why.

Letters used in shapes: N samples, M training samples, F feature width, C classes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from contrastkit.evaluation.linear_probe import linear_probe_accuracy

logger = logging.getLogger(__name__)

RAW_MAX_SIDE = 32  # images with a larger side enter the raw-input baseline area-downsampled


def _check_features(name: str, features: Tensor, min_rows: int = 1) -> None:
    if features.ndim != 2 or features.shape[0] < min_rows:
        raise ValueError(
            f"{name} must be a (N, F) matrix with N >= {min_rows}, "
            f"got shape {tuple(features.shape)}"
        )


def _check_labels(name: str, labels: Tensor, rows: int) -> None:
    if labels.ndim != 1 or labels.shape[0] != rows:
        raise ValueError(f"{name} must be ({rows},), got shape {tuple(labels.shape)}")


def _check_split(
    train_feats: Tensor, train_labels: Tensor, test_feats: Tensor, test_labels: Tensor
) -> None:
    """Validate a train/test split of frozen features, as the kNN and linear probes take it."""
    _check_features("train_feats", train_feats)
    _check_features("test_feats", test_feats)
    _check_labels("train_labels", train_labels, train_feats.shape[0])
    _check_labels("test_labels", test_labels, test_feats.shape[0])
    if train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(
            f"train_feats and test_feats must have the same width, got "
            f"{train_feats.shape[1]} and {test_feats.shape[1]}"
        )


def _unit(features: Tensor) -> Tensor:
    return F.normalize(features.double(), dim=1)


def separation(features: Tensor, labels: Tensor) -> dict[str, float]:
    """Return the mean cosine similarity of same-label and different-label pairs, and their gap.

    Pairs are all (i, j) with i < j; samples with a negative label (unlabelled) are ignored.
    Uses sum_{i<j} cos_ij = (||sum_i u_i||^2 - sum_i ||u_i||^2) / 2 for unit rows u, so no
    N x N matrix is formed.

    Args:
        features: (N, F).
        labels: (N,) integer class of each row.

    Returns:
        ``{"same": float, "different": float, "gap": same - different}``.

    Raises:
        ValueError: bad shapes, or no same-label pair or no different-label pair.
    """
    _check_features("features", features)
    _check_labels("labels", labels, features.shape[0])
    keep = labels >= 0
    unit, labels = _unit(features[keep]), labels[keep].long()
    n = unit.shape[0]
    norms = unit.pow(2).sum(1)  # (N,) 1, or 0 for an all-zero row
    total = (unit.sum(0).pow(2).sum() - norms.sum()) / 2
    classes, counts = torch.unique(labels, return_counts=True)
    class_sums = torch.zeros(len(classes), unit.shape[1], dtype=unit.dtype)  # (C, F)
    class_sums.index_add_(0, torch.searchsorted(classes, labels), unit)
    same = (class_sums.pow(2).sum() - norms.sum()) / 2
    same_pairs = int((counts * (counts - 1) // 2).sum())
    diff_pairs = n * (n - 1) // 2 - same_pairs
    if same_pairs == 0 or diff_pairs == 0:
        raise ValueError(
            f"labels must give at least one same-label and one different-label pair, got "
            f"{len(classes)} classes with counts {counts.tolist()[:10]}"
        )
    same_mean = float(same) / same_pairs
    diff_mean = float(total - same) / diff_pairs
    return {"same": same_mean, "different": diff_mean, "gap": same_mean - diff_mean}


def separation_gap(features: Tensor, labels: Tensor) -> float:
    """Return mean same-label cosine minus mean different-label cosine: (N, F), (N,) -> float."""
    return separation(features, labels)["gap"]


@torch.no_grad()
def knn_accuracy(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Return the weighted kNN accuracy of ``test_feats`` against ``train_feats`` (DINO's protocol).

    Each test sample votes with its k most cosine-similar training samples, each weighted by
    exp(similarity / temperature); the class with the largest total wins.

    Args:
        train_feats: (M, F); train_labels: (M,) non-negative classes.
        test_feats: (N, F); test_labels: (N,).
        k: neighbours (capped at M).
        temperature: sharpness of the vote weights.
    """
    _check_split(train_feats, train_labels, test_feats, test_labels)
    if k < 1 or temperature <= 0:
        raise ValueError(
            f"k must be >= 1 and temperature > 0, got k={k}, temperature={temperature}"
        )
    train_unit, test_unit = _unit(train_feats), _unit(test_feats)
    train_labels = train_labels.long()
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    k = min(k, train_unit.shape[0])
    correct = 0
    for start in range(0, test_unit.shape[0], 1024):
        sims = test_unit[start : start + 1024] @ train_unit.T  # (n, M)
        top_sims, top_idx = sims.topk(k, dim=1)  # (n, k)
        weights = (top_sims / temperature).exp()
        votes = torch.zeros(sims.shape[0], num_classes, dtype=weights.dtype)  # (n, C)
        votes.scatter_add_(1, train_labels[top_idx], weights)
        correct += int((votes.argmax(1) == test_labels[start : start + 1024]).sum())
    return correct / test_unit.shape[0]


def unevaluable(train_labels: Tensor, test_labels: Tensor) -> dict[str, str]:
    """Return the label-based metrics the split cannot support, each with the reason why.

    Small folders of one's own photos give splits where some metrics mean nothing or cannot be
    computed; those are skipped with a note instead of failing the whole evaluation:

    - all of ``knn``, ``linear_probe`` and ``separation`` without labels on both splits;
    - ``knn`` and ``linear_probe`` with fewer than 2 classes in the training split;
    - ``linear_probe`` when a class has fewer than 2 training samples (a class of a single image
      sits in both splits, so the probe would be scored on what it was fitted to);
    - ``separation`` without a same-label pair or a different-label pair in the held-out split;
    - ``uniformity`` and ``effective_rank`` with fewer than 2 held-out samples.
    (kNN needs no more: k is capped at the number of training samples.)

    Args:
        train_labels: (M,) classes, -1 for unlabelled; test_labels: (N,).

    Returns:
        metric name -> one-line reason; empty when everything can be evaluated.
    """
    skipped: dict[str, str] = {}
    if len(test_labels) < 2:  # the label-free geometry needs two held-out samples
        reason = f"the held-out split holds {len(test_labels)} sample(s) (at least 2)"
        skipped |= dict.fromkeys(("uniformity", "effective_rank"), reason)
    train, test = train_labels[train_labels >= 0], test_labels[test_labels >= 0]
    if len(train) == 0 or len(test) == 0:
        reason = "the data has no labels (for a folder: no class sub-folders)"
        return skipped | dict.fromkeys(("knn", "linear_probe", "separation"), reason)
    classes, counts = torch.unique(train, return_counts=True)
    if len(classes) < 2:
        skipped["knn"] = skipped["linear_probe"] = "the training split holds a single class"
    elif int(counts.min()) < 2:
        few = int((counts < 2).sum())
        skipped["linear_probe"] = (
            f"{few} of {len(classes)} classes have a single training sample (at least 2 each)"
        )
    _, test_counts = torch.unique(test, return_counts=True)
    if int(test_counts.max()) < 2 or len(test_counts) < 2:
        skipped["separation"] = (
            f"the held-out split has no same-label and different-label pair (class counts "
            f"{test_counts.tolist()[:10]})"
        )
    return skipped


def alignment(z1: Tensor, z2: Tensor, alpha: float = 2.0) -> float:
    """Return E ||u1 - u2||^alpha over positive pairs, u = z / ||z|| (lower is better aligned).

    Args:
        z1: (N, F) embeddings of one view; z2: (N, F) of the other view of the same samples.
        alpha: exponent (2 in Wang & Isola).
    """
    _check_features("z1", z1)
    if z2.shape != z1.shape:
        raise ValueError(f"z2 must have the shape of z1 {tuple(z1.shape)}, got {tuple(z2.shape)}")
    return float((_unit(z1) - _unit(z2)).norm(dim=1).pow(alpha).mean())


def uniformity(z: Tensor, t: float = 2.0) -> float:
    """Return log E_{i<j} exp(-t ||u_i - u_j||^2), u = z / ||z|| (lower is more uniform).

    Identical embeddings give 0; uniform points on a high-dimensional sphere give about -2t
    (pairs are nearly orthogonal, ||u_i - u_j||^2 = 2).

    Args:
        z: (N, F) with N >= 2.
        t: temperature of the Gaussian potential (2 in Wang & Isola).
    """
    _check_features("z", z, min_rows=2)
    unit = _unit(z)
    n = unit.shape[0]
    chunks = []
    for start in range(0, n, 2048):
        block = unit[start : start + 2048]
        sq = (2 - 2 * block @ unit.T).clamp_min(0)  # (b, N) squared distances of unit vectors
        rows = torch.arange(start, start + block.shape[0])[:, None]
        upper = torch.arange(n)[None, :] > rows  # pairs i < j only
        chunks.append(torch.logsumexp(-t * sq[upper], dim=0))
    return float(torch.logsumexp(torch.stack(chunks), dim=0) - math.log(n * (n - 1) / 2))


def effective_rank(z: Tensor) -> float:
    """Return exp(entropy of the normalised singular values of z): (N, F) -> float.

    The value lies in [1, min(N, F)]: 1 when every row points the same way (complete collapse),
    min(N, F) when the singular values are equal. An all-zero matrix gives 0.
    """
    _check_features("z", z)
    singular = torch.linalg.svdvals(z.double())
    total = singular.sum()
    if total <= 0:
        return 0.0
    p = singular / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def subset_index(n: int, limit: int, seed: int) -> Tensor:
    """Return range(n) (N,), or for n > limit the first ``limit`` of a permutation fixed by seed.

    The subset does not touch the global RNG.
    """
    if n <= limit:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit]


def _collate(items: list) -> tuple[Tensor, Tensor]:
    """Stack B samples ``(x, y)`` into x (B, ...) and y (B,) long, as the old loop did."""
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])


def _batches(dataset, batch_size: int, num_workers: int) -> DataLoader:
    """Return the dataset in order, in batches (x (B, ...), y (B,)), read by ``num_workers``."""
    if batch_size < 1 or num_workers < 0:
        raise ValueError(
            f"batch_size must be >= 1 and num_workers >= 0, got {batch_size} and {num_workers}"
        )
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate
    )


@torch.no_grad()
def embed_dataset(
    method_or_encoder: nn.Module,
    dataset,
    batch_size: int = 512,
    device: str = "cpu",
    num_workers: int = 0,
) -> tuple[Tensor, Tensor]:
    """Return the representations h of every sample and their labels, in dataset order.

    The samples stream through a ``DataLoader``: only one batch of inputs and the features are
    held, whatever the size of the dataset.

    Args:
        method_or_encoder: a ``Method`` (its ``embed`` is used: h, never z) or any module
            mapping (B, ...) -> (B, F).
        dataset: ``ds[i] -> (x, y)``.
        batch_size: samples per forward pass.
        device: where to run the encoder.
        num_workers: processes reading the dataset (0: the main process).

    Returns:
        features (N, F) float32 on the CPU and labels (N,) long (-1 where unlabelled).
    """
    encode = getattr(method_or_encoder, "embed", method_or_encoder)
    was_training = method_or_encoder.training
    method_or_encoder.eval()
    feats, labels = [], []
    try:
        for x, y in _batches(dataset, batch_size, num_workers):
            feats.append(encode(x.to(device)).float().cpu())
            labels.append(y)
    finally:
        method_or_encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def raw_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Return the shape of one sample in the raw-input baseline, before it is flattened.

    Images (C, H, W) with a side above ``RAW_MAX_SIDE`` become (C, min(H, 32), min(W, 32));
    smaller images and anything else (points) keep their shape.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or max(shape[1:]) <= RAW_MAX_SIDE:
        return shape
    return (shape[0], min(shape[1], RAW_MAX_SIDE), min(shape[2], RAW_MAX_SIDE))


def raw_input(x: Tensor) -> Tensor:
    """Return a batch's raw-input baseline features: (B, ...) -> (B, prod(raw_shape)) float32.

    Images larger than ``RAW_MAX_SIDE`` are area-downsampled (each output pixel the mean of the
    input pixels it covers), so the baseline of 224 px images is 3 x 32 x 32 = 3072 wide, not
    150528; everything else is only flattened.
    """
    x = x.float()
    target = raw_shape(x.shape[1:])
    if target != tuple(x.shape[1:]):
        x = F.adaptive_avg_pool2d(x, target[1:])  # (B, C, <= 32, <= 32)
    return x.flatten(1)


@torch.no_grad()
def embed_views(
    encoders: dict[str, nn.Module | None], batches, device: str = "cpu"
) -> dict[str, list[Tensor]]:
    """Return each encoder's features of every view in a stream of batches of views.

    Every encoder encodes a batch while it is in memory, so views that are costly to make are
    made once for all encoders and only features are kept (alignment of several encoders).

    Args:
        encoders: name -> a ``Method`` or module, as ``embed_dataset`` takes, or None for the
            raw-input baseline (``raw_input``).
        batches: an iterable of batches, each V tensors (B, ...): view v of B samples.
        device: where the encoders run.

    Returns:
        name -> V features (n, F) float32 on the CPU, n the samples of all batches.
    """
    feats: dict[str, list[list[Tensor]]] = {name: [] for name in encoders}
    for views in batches:
        for name, encoder in encoders.items():
            feats[name].append(
                [
                    raw_input(x).cpu()
                    if encoder is None
                    else embed_dataset(encoder, [(row, -1) for row in x], len(x), device)[0]
                    for x in views
                ]
            )
    return {name: [torch.cat(f) for f in zip(*parts, strict=True)] for name, parts in feats.items()}


def raw_features(dataset, batch_size: int = 512, num_workers: int = 0) -> tuple[Tensor, Tensor]:
    """Return the raw-input baseline (N, prod(raw_shape)) and labels (N,), in dataset order.

    Streamed in batches like ``embed_dataset``; see ``raw_input`` for what a sample becomes.
    """
    feats, labels = [], []
    for x, y in _batches(dataset, batch_size, num_workers):
        feats.append(raw_input(x))
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


__all__ = [
    "RAW_MAX_SIDE",
    "alignment",
    "effective_rank",
    "embed_dataset",
    "embed_views",
    "knn_accuracy",
    "linear_probe_accuracy",
    "raw_features",
    "raw_input",
    "raw_shape",
    "separation",
    "separation_gap",
    "subset_index",
    "unevaluable",
    "uniformity",
]

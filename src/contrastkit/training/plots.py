"""Figures of a run: loss curve, online kNN curve, 2-D map of h, histograms of cosine similarity.

Every figure is a ``matplotlib.figure.Figure`` drawn on its own Agg canvas (no display needed)
and written atomically as a PNG. Neither ``pyplot`` nor ``matplotlib.use`` is touched, so
importing this module leaves a notebook user's backend as it was. Maps and histograms compare
the encoder before training (random init) and after.

Letters used in shapes: N samples, F feature width.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from contrastkit.checkpoint import atomic_write


def _figure(width: float, height: float) -> Figure:
    # a Figure with its own Agg canvas: nothing is registered with pyplot, so nothing leaks
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _panels(count: int, panel_width: float, height: float) -> tuple[Figure, list[Axes]]:
    fig = _figure(panel_width * count, height)
    return fig, list(fig.subplots(1, count, squeeze=False)[0])


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    # render to memory first so that a failed draw never leaves a half-written file
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    return Path(path)


def _loss_range(values: list[float]) -> tuple[float, float] | None:
    """Return y limits that show every value but the first steps' spike, padded by 5%."""
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return None
    low, high = finite[0], finite[min(len(finite) - 1, math.ceil(0.98 * (len(finite) - 1)))]
    pad = 0.05 * (high - low) or 0.05 * max(abs(high), 1.0)
    return low - pad, high + pad


def plot_loss(
    records: list[dict],
    path: str | os.PathLike,
    bound: float | None = None,
    title: str = "training loss",
) -> Path:
    """Draw the loss of each logged step (and the per-epoch mean) from metrics.jsonl records.

    Args:
        records: the run's records; ``"step"`` ones carry ``step`` and ``loss``, ``"epoch"``
            ones ``epoch_loss``.
        path: the PNG to write.
        bound: for a loss with K negatives, log(K+1) (``info_nce_bound``; log(2N-1) for SimCLR's
            batch of N): the InfoNCE loss when every similarity is equal, drawn as a dashed line.
            Training starts near it and the gap below it bounds the views' mutual information.
        title: the figure's title (e.g. method and data).
    """
    steps = [r["step"] for r in records if r.get("event") == "step"]
    losses = [r["loss"] for r in records if r.get("event") == "step"]
    fig = _figure(6, 3.5)
    ax = fig.subplots()
    ax.plot(steps, losses, lw=1, label="loss (logged steps)")
    epochs = [r for r in records if r.get("event") == "epoch"]
    if len(epochs) > 1:
        ax.plot(
            [r["step"] for r in epochs], [r["epoch_loss"] for r in epochs], lw=2, label="epoch mean"
        )
    y_range = _loss_range(losses)
    if bound is not None:
        label = f"log(K+1) = log({round(math.exp(bound))}) = {bound:.3f}: all similarities equal"
        ax.axhline(bound, ls="--", color="grey", lw=1, label=label)
        y_range = y_range and (min(y_range[0], bound - 0.05), max(y_range[1], bound + 0.05))
    if y_range is not None:
        ax.set_ylim(*y_range)
    if steps:
        ax.set_xlim(0, max(steps))
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_knn(
    records: list[dict], path: str | os.PathLike, references: dict[str, float] | None = None
) -> Path:
    """Draw the online kNN accuracy against the step from metrics.jsonl's ``"eval"`` records.

    Args:
        records: the run's records; those with ``"event": "eval"`` carry ``step`` and ``knn``.
        path: the PNG to write.
        references: label -> accuracy drawn as dashed horizontal lines (e.g. the final
            evaluation's raw input and random init).
    """
    evals = [r for r in records if r.get("event") == "eval"]
    fig = _figure(6, 3.5)
    ax = fig.subplots()
    ax.plot([r["step"] for r in evals], [r["knn"] for r in evals], "o-", lw=1.5, label="trained h")
    for (label, value), style in zip((references or {}).items(), ("--", ":", "-."), strict=False):
        ax.axhline(value, ls=style, color="grey", lw=1, label=label)
    ax.set_title("online kNN accuracy of h on the held-out split")
    ax.set_xlabel("step")
    ax.set_ylabel("kNN accuracy (k=20)")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def project_2d(features: Tensor, method: str = "pca", seed: int = 0) -> Tensor:
    """Map features (N, F) to (N, 2) by PCA (or t-SNE with ``method="tsne"``); F <= 2 is kept."""
    x = features.double()
    if x.shape[1] == 1:
        return torch.cat([x, torch.zeros_like(x)], dim=1)
    if x.shape[1] == 2:
        return x
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (x.shape[0] - 1) / 3))
        tsne = TSNE(2, perplexity=perplexity, random_state=seed, init="pca")
        return torch.from_numpy(tsne.fit_transform(x.numpy()))
    centred = x - x.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:2].T


def plot_embedding_maps(
    panels: dict[str, Tensor],
    labels: Tensor,
    path: str | os.PathLike,
    class_names: list[str] | None = None,
    method: str = "pca",
) -> Path:
    """Draw one 2-D map per entry of ``panels`` (title -> features (N, F)), coloured by label."""
    fig, axes = _panels(len(panels), 4.2, 4)
    fig.suptitle(f"2-D {method.upper()} map of h on the held-out split, coloured by class")
    for ax, (title, feats) in zip(axes, panels.items(), strict=True):
        xy = project_2d(feats, method)
        scatter = ax.scatter(xy[:, 0], xy[:, 1], c=labels.numpy(), cmap="tab10", s=8)
        ax.set_title(f"{title} ({method.upper()})")
        ax.set_xticks([])
        ax.set_yticks([])
    if class_names and len(class_names) <= 10:
        handles, _ = scatter.legend_elements()
        fig.legend(handles, class_names[: len(handles)], loc="center right", fontsize=8)
    return _save(fig, path)


def pair_similarities(features: Tensor, labels: Tensor, max_samples: int = 2000):
    """Return cosine similarities of same-label and different-label pairs i < j (1-D tensors)."""
    unit = F.normalize(features[:max_samples].double(), dim=1)
    labels = labels[:max_samples]
    sims = unit @ unit.T  # (N, N)
    upper = torch.triu(torch.ones_like(sims, dtype=torch.bool), diagonal=1)
    same = labels[:, None] == labels[None, :]
    return sims[upper & same], sims[upper & ~same]


def plot_similarity_histograms(
    panels: dict[str, Tensor], labels: Tensor, path: str | os.PathLike
) -> Path:
    """Draw histograms of same-label vs different-label cosine similarity, one panel per entry."""
    fig, axes = _panels(len(panels), 4.2, 3.2)
    fig.suptitle("cosine similarity of held-out pairs: same label vs different label")
    for ax, (title, feats) in zip(axes, panels.items(), strict=True):
        same, diff = pair_similarities(feats, labels)
        bins = torch.linspace(-1, 1, 61).numpy()
        ax.hist(diff.numpy(), bins=bins, alpha=0.6, density=True, label="different label")
        ax.hist(same.numpy(), bins=bins, alpha=0.6, density=True, label="same label")
        ax.axvline(0, color="grey", lw=0.8)  # orthogonal
        ax.set_xlim(-1, 1)
        ax.set_title(f"{title}: gap {same.mean() - diff.mean():.3f}")
        ax.set_xlabel("cosine similarity")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


__all__ = [
    "pair_similarities",
    "plot_embedding_maps",
    "plot_knn",
    "plot_loss",
    "plot_similarity_histograms",
    "project_2d",
]

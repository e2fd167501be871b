"""Figures of a run: loss curve, 2-D map of h, histograms of cosine similarity.

Every figure is a ``matplotlib.figure.Figure`` drawn on its own Agg canvas (no display needed)
and written atomically as a PNG. Neither ``pyplot`` nor ``matplotlib.use`` is touched, so
importing this module leaves a notebook user's backend as it was. Maps and histograms compare
the encoder before training (random init) and after.

Letters used in shapes: N samples, F feature width.
"""

from __future__ import annotations

import io
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


def plot_loss(records: list[dict], path: str | os.PathLike) -> Path:
    """Draw the loss of each logged step (and the per-epoch mean) from metrics.jsonl records."""
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
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
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
    for ax, (title, feats) in zip(axes, panels.items(), strict=True):
        same, diff = pair_similarities(feats, labels)
        bins = torch.linspace(-1, 1, 61).numpy()
        ax.hist(diff.numpy(), bins=bins, alpha=0.6, density=True, label="different label")
        ax.hist(same.numpy(), bins=bins, alpha=0.6, density=True, label="same label")
        ax.set_title(f"{title}: gap {same.mean() - diff.mean():.3f}")
        ax.set_xlabel("cosine similarity")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


__all__ = [
    "pair_similarities",
    "plot_embedding_maps",
    "plot_loss",
    "plot_similarity_histograms",
    "project_2d",
]

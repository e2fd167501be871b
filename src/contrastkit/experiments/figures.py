"""The experiments' figures: measurements against a swept setting, or one bar per variant.

Each figure is a ``matplotlib.figure.Figure`` on its own Agg canvas (no ``pyplot``, no backend
switch), written atomically as a PNG, with a title and labelled axes. Error bars are the standard
deviation over seeds (the ``_std`` entries of the rows, see ``common.aggregate``).
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from contrastkit.checkpoint import atomic_write


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    buffer = io.BytesIO()  # drawn in memory first: a failed draw leaves no half-written file
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    return Path(path)


def _std(row: dict[str, Any], key: str) -> float:
    return float(row.get(f"{key}_std", 0.0))


def plot_sweep(
    rows: Sequence[dict[str, Any]],
    x: str,
    panels: Sequence[tuple[str, str]],
    path: str | os.PathLike,
    *,
    title: str,
    xlabel: str,
    log_x: bool = False,
) -> Path:
    """Draw one panel per measurement against the swept setting ``x``, mean ± std over seeds.

    Args:
        rows: ``common.aggregate`` rows, each with ``x`` and the panels' keys.
        panels: ``(key, y-axis label)`` for each panel.
        path: the PNG to write.
        title: the figure's title; xlabel: the label of every x axis.
        log_x: a logarithmic x axis (batch sizes, temperatures).
    """
    fig = Figure(figsize=(3.8 * len(panels), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    xs = [row[x] for row in rows]
    for ax, (key, label) in zip(axes, panels, strict=True):
        ys = [row[key] for row in rows]
        ax.errorbar(xs, ys, yerr=[_std(r, key) for r in rows], fmt="o-", capsize=3, lw=1.5)
        if log_x:
            ax.set_xscale("log")
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
            ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)


def plot_bars(
    rows: Sequence[dict[str, Any]],
    label: str,
    panels: Sequence[tuple[str, str]],
    path: str | os.PathLike,
    *,
    title: str,
    groups: Sequence[str] | None = None,
    zoom: bool = False,
) -> Path:
    """Draw one horizontal bar per row for each measurement, mean ± std over seeds.

    Args:
        rows: ``common.aggregate`` rows, each with ``label`` and the panels' keys.
        label: the key naming each bar (``"variant"``, ``"representation"``).
        panels: ``(key, x-axis label)`` for each panel.
        path: the PNG to write.
        title: the figure's title.
        groups: one group name per row; bars of the same group share a colour.
        zoom: start the x axes near the smallest value instead of at 0 (differences of a few
            points of accuracy).
    """
    fig = Figure(figsize=(4.2 * len(panels), 1.2 + 0.36 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    names = [str(row[label]) for row in rows]
    palette = {g: f"C{i}" for i, g in enumerate(dict.fromkeys(groups or []))}
    colours = [palette[g] for g in groups] if groups else None
    positions = list(range(len(rows)))[::-1]  # the first row on top
    for ax, (key, xlabel) in zip(axes, panels, strict=True):
        values = [row[key] for row in rows]
        errors = [_std(r, key) for r in rows]
        ax.barh(positions, values, xerr=errors, color=colours, capsize=3)
        if zoom:
            low = min(v - e for v, e in zip(values, errors, strict=True))
            high = max(v + e for v, e in zip(values, errors, strict=True))
            margin = 0.15 * (high - low) or 0.01
            ax.set_xlim(low - margin, high + margin)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(positions, names)
    axes[0].set_ylabel(label)
    fig.suptitle(title)
    return _save(fig, path)


def plot_grouped(
    rows: Sequence[dict[str, Any]],
    label: str,
    series: Sequence[tuple[str, str]],
    path: str | os.PathLike,
    *,
    title: str,
    ylabel: str,
) -> Path:
    """Draw a group of bars per row, one bar per series (mean ± std where the row has one).

    Args:
        rows: rows with ``label`` and each series' key (``"claimed"``, ``"classic"``).
        label: the key naming each group.
        series: ``(key, legend text)`` of each bar in a group.
        path: the PNG to write.
        title, ylabel: the figure's title and y-axis label.
    """
    fig = Figure(figsize=(1.6 + 1.6 * len(rows), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / len(series)
    for i, (key, legend) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(rows))]
        values = [float(row[key]) for row in rows]
        errors = [_std(r, key) for r in rows]
        ax.bar(xs, values, width, yerr=errors if any(errors) else None, capsize=3, label=legend)
    names = [textwrap.fill(str(row[label]), 16) for row in rows]
    ax.set_xticks(range(len(rows)), names, fontsize=8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel(label)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title)
    return _save(fig, path)


__all__ = ["plot_bars", "plot_grouped", "plot_sweep"]

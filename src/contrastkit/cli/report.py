"""Tables the CLI prints for a run: training numbers and evaluation next to the baselines."""

from __future__ import annotations

import math
from typing import Any

ROWS: tuple[tuple[str, str, str], ...] = (
    ("knn", "kNN accuracy (k=20)", "{:.3f}"),
    ("linear_probe", "linear-probe accuracy", "{:.3f}"),
    ("same_similarity", "same-label cosine", "{:+.3f}"),
    ("different_similarity", "different-label cosine", "{:+.3f}"),
    ("separation_gap", "separation gap", "{:+.3f}"),
    ("alignment", "alignment (lower=better)", "{:.3f}"),
    ("uniformity", "uniformity (lower=better)", "{:.3f}"),
    ("effective_rank", "effective rank", "{:.2f}"),
    ("feature_dim", "feature width", "{:d}"),
)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("raw", "raw input"),
    ("random_init", "random init"),
    ("trained", "trained h"),
)


def format_eval(results: dict[str, Any], title: str) -> str:
    """Return the evaluation as a text table: one row per metric, one column per encoder.

    The raw-input column is headed by ``results["raw_label"]`` when there is one ("raw input
    (32x32 pixels)": large images enter that baseline downsampled).
    """
    names = {**dict(COLUMNS), "raw": results.get("raw_label") or dict(COLUMNS)["raw"]}
    widths = {column: max(13, len(name) + 2) for column, name in names.items()}
    lines = [f"{title:<28}" + "".join(f"{names[c]:>{widths[c]}}" for c, _ in COLUMNS)]
    for key, label, fmt in ROWS:
        cells = []
        for column, _ in COLUMNS:
            value = results.get(column, {}).get(key)
            cells.append("-" if value is None else fmt.format(value))
        if any(c != "-" for c in cells):
            row = "".join(
                f"{cell:>{widths[c]}}" for (c, _), cell in zip(COLUMNS, cells, strict=True)
            )
            lines.append(f"{label:<28}" + row)
    return "\n".join(lines)


def format_training(summary: dict[str, Any]) -> str:
    """Return the lines about training: length, time, first and final loss next to log(K+1)."""
    lines = [
        f"trained {summary['method']} on {summary['data']} ({summary['backbone']}): "
        f"{summary['steps']} steps ({summary['epochs']:.3g} epochs) of batch "
        f"{summary['batch_size']} in {summary['train_seconds']:.1f} s "
        f"({summary['samples_per_s']:.0f} samples/s)"
    ]
    first, final = summary.get("first_loss"), summary.get("final_loss")
    bound = summary.get("info_nce_bound")
    if first is not None and bound is not None:
        n = summary["batch_size"]
        lines.append(
            f"first loss {first:.3f}  vs  log(2N-1) = log({2 * n - 1}) = {math.log(2 * n - 1):.3f} "
            f"(all similarities equal);  info_nce_bound(K={summary['num_negatives']}) = "
            f"log(K+1) = {bound:.3f}"
        )
        lines.append(
            f"final loss {final:.3f}  ->  InfoNCE lower bound on the views' mutual information: "
            f"log(K+1) - loss = {bound - final:.3f} nats (at most {bound:.3f})"
        )
    elif first is not None:
        lines.append(f"first loss {first:.4f}, final loss {final:.4f}")
    return "\n".join(lines)


__all__ = ["format_eval", "format_training"]

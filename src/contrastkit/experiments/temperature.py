"""Temperature: a low tau lets the hardest negative dominate each anchor's softmax.

SimCLR trained at each temperature of a sweep, then measured on two views of every held-out
sample, projected to z (the space the loss works in). For an anchor i, its negatives are the
other 2N - 2 views (as in a training batch of N samples); the softmax of their similarities / tau
gives each negative its share of the repulsion. ``hardest_negative_weight`` is the largest share,
averaged over anchors (``uniform_weight`` = 1/K is what every negative would get at tau = inf).
Alignment and uniformity (Wang & Isola 2020) are measured on the same unit z; kNN on h.

Letters used in shapes: N held-out samples, D projection width.
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.evaluation import metrics as ev
from contrastkit.experiments.common import (
    Claim,
    Column,
    Plan,
    Result,
    aggregate,
    compare,
    features,
    for_each_seed,
    format_table,
    heldout_views,
    train_run,
    unit_rows,
)
from contrastkit.experiments.figures import plot_sweep

NAME = "temperature"
FULL_TAUS = (0.05, 0.1, 0.2, 0.5, 1.0)
QUICK_TAUS = (0.05, 0.2, 1.0)
COLUMNS = [
    Column("temperature", "tau", "{:g}"),
    Column("hardest_negative_weight", "hardest neg. weight"),
    Column("uniform_weight", "1/K", "{:.4f}", spread=False),
    Column("alignment", "alignment"),
    Column("uniformity", "uniformity"),
    Column("knn", "kNN"),
]


@torch.no_grad()
def hardest_negative_weight(z1: Tensor, z2: Tensor, temperature: float) -> float:
    """Return the mean over anchors of the largest softmax weight among their negatives.

    Args:
        z1, z2: (N, D) projections of two views of the same N samples; row i of z1 and of z2
            are positives, every other row of either is a negative (K = 2N - 2).
        temperature: tau of the softmax over similarities.
    """
    u = unit_rows(torch.cat([z1, z2]))  # (2N, D)
    n = z1.shape[0]
    sims = u @ u.T  # (2N, 2N)
    rows = torch.arange(2 * n)
    excluded = torch.zeros_like(sims, dtype=torch.bool)
    excluded[rows, rows] = True  # the anchor itself
    excluded[rows, (rows + n) % (2 * n)] = True  # its positive
    weights = torch.softmax((sims / temperature).masked_fill(excluded, float("-inf")), dim=1)
    return float(weights.max(dim=1).values.mean())


def run(plan: Plan) -> Result:
    """Train SimCLR at each temperature for every seed; return rows, claims, table and figure."""
    steps = plan.steps_or(quick=80, full=300)
    taus = QUICK_TAUS if plan.quick else FULL_TAUS

    def measure(seed: int) -> list[dict]:
        records = []
        for tau in taus:
            trained = train_run(
                plan, f"simclr-tau{tau:g}", seed, method="simclr", steps=steps, temperature=tau
            )
            with torch.no_grad():
                z1, z2 = trained.method.embed_views(heldout_views(trained))  # (N, D) each
            train_h, train_y, test_h, test_y = features(trained)
            records.append(
                {
                    "temperature": tau,
                    "hardest_negative_weight": hardest_negative_weight(z1, z2, tau),
                    "uniform_weight": 1.0 / (2 * z1.shape[0] - 2),
                    "alignment": ev.alignment(z1, z2),
                    "uniformity": ev.uniformity(z1),
                    "knn": ev.knn_accuracy(train_h, train_y, test_h, test_y),
                }
            )
        return records

    records = for_each_seed(plan, measure)
    rows = aggregate(records, ["temperature"])
    figure = plot_sweep(
        rows,
        "temperature",
        [
            ("hardest_negative_weight", "softmax weight of the hardest negative"),
            ("uniformity", "uniformity of z (lower: more uniform)"),
            ("knn", "kNN accuracy of h"),
        ],
        plan.out / "temperature.png",
        title=f"SimCLR on {plan.data}: temperature ({steps} steps each, {plan.seeds} seeds)",
        xlabel="temperature tau",
        log_x=True,
    )
    return Result(
        NAME,
        rows,
        records,
        claims(rows),
        format_table(rows, COLUMNS),
        figure,
        settings={"method": "simclr", "steps": steps, "temperatures": list(taus)},
    )


def claims(rows: list[dict]) -> list[Claim]:
    """Return the claims, each from the highest temperature to the lowest."""
    hot, cold = rows[-1], rows[0]  # the sweep runs from low to high tau
    hi, lo = f"tau={hot['temperature']:g}", f"tau={cold['temperature']:g}"
    best = max(rows, key=lambda r: r["knn"])
    return [
        compare(
            "lower tau -> the hardest negative takes more of the softmax weight",
            "hardest_negative_weight",
            (hi, hot),
            (lo, cold),
            higher=True,
        ),
        compare(
            "lower tau -> more uniform z (lower uniformity)",
            "uniformity",
            (hi, hot),
            (lo, cold),
            higher=False,
        ),
        Claim(
            "the best kNN is at a moderate tau, not at either end of the sweep",
            best is not hot and best is not cold,
            ", ".join(f"{r['knn']:.3f} at tau={r['temperature']:g}" for r in rows),
        ),
    ]

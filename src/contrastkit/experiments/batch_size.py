"""Batch size: more negatives raise the InfoNCE bound log(K+1); do they give better features?

SimCLR with batch sizes from 16 to 1024, every run the same number of steps (so a bigger batch
also sees more samples), everything else fixed. Each anchor's negatives are the other 2N - 2
views, K = 2N - 2, and InfoNCE certifies at most log(K + 1) nats of mutual information: the
estimate ``log(K+1) - final loss`` (``mi_estimate``) is what a bigger batch can raise. kNN and
linear probe are measured on h of the held-out split.

Batches above 256 on data other than toy and digits are embedded in chunks of 256 (gradient
caching, ``chunk_size``: the same gradient in a fraction of the memory).
"""

from __future__ import annotations

from contrastkit.data import build_dataset
from contrastkit.experiments.common import (
    FAST_SETUPS,
    Claim,
    Column,
    Plan,
    Result,
    aggregate,
    compare,
    features,
    for_each_seed,
    format_table,
    probe_scores,
    train_run,
)
from contrastkit.experiments.figures import plot_sweep
from contrastkit.losses import info_nce_bound

NAME = "batch-size"
FULL_BATCHES = (16, 32, 64, 128, 256, 512, 1024)
QUICK_BATCHES = (16, 64, 256, 1024)
CHUNK = 256
COLUMNS = [
    Column("batch_size", "batch", "{:d}"),
    Column("K", "K", "{:d}"),
    Column("log_K_plus_1", "log(K+1)", spread=False),
    Column("final_loss", "final loss"),
    Column("mi_estimate", "log(K+1)-loss"),
    Column("epochs", "epochs", "{:.1f}", spread=False),
    Column("knn", "kNN"),
    Column("linear_probe", "linear probe"),
]


def batch_sizes(plan: Plan) -> list[int]:
    """Return the swept batch sizes that the training split can fill (all of it at most)."""
    train_ds = build_dataset(plan.data, train=True)
    wanted = QUICK_BATCHES if plan.quick else FULL_BATCHES
    fitting = [b for b in wanted if b <= len(train_ds)]
    if len(fitting) < len(wanted):  # toy: 100 points; end the sweep at the whole split
        fitting.append(len(train_ds) - len(train_ds) % 2)
    return sorted(set(fitting))


def run(plan: Plan) -> Result:
    """Train SimCLR at every batch size for every seed; return rows, claims, table and figure."""
    steps = plan.steps_or(quick=60, full=300)
    sizes = batch_sizes(plan)

    def measure(seed: int) -> list[dict]:
        records = []
        for batch in sizes:
            chunk = CHUNK if batch > CHUNK and plan.data not in FAST_SETUPS else None
            trained = train_run(
                plan,
                f"simclr-b{batch}",
                seed,
                method="simclr",
                steps=steps,
                batch_size=batch,
                chunk_size=chunk,
            )
            negatives = trained.method.num_negatives(batch)
            final = float(trained.summary["final_loss"])
            records.append(
                {
                    "batch_size": batch,
                    "K": negatives,
                    "log_K_plus_1": info_nce_bound(negatives),
                    "final_loss": final,
                    "mi_estimate": info_nce_bound(negatives) - final,
                    "epochs": float(trained.summary["epochs"]),
                    **probe_scores(*features(trained)),
                }
            )
        return records

    records = for_each_seed(plan, measure)
    rows = aggregate(records, ["batch_size"])
    figure = plot_sweep(
        rows,
        "batch_size",
        [
            ("mi_estimate", "log(K+1) - final loss (nats)"),
            ("knn", "kNN accuracy of h"),
            ("linear_probe", "linear probe accuracy of h"),
        ],
        plan.out / "batch_size.png",
        title=f"SimCLR on {plan.data}: batch size ({steps} steps each, {plan.seeds} seeds)",
        xlabel="batch size N",
        log_x=True,
    )
    return Result(
        NAME,
        rows,
        records,
        claims(rows),
        format_table(rows, COLUMNS),
        figure,
        settings={"method": "simclr", "steps": steps, "batch_sizes": sizes},
    )


def claims(rows: list[dict]) -> list[Claim]:
    """Return the claims, each from the smallest batch to the largest."""
    first, last = rows[0], rows[-1]
    lo, hi = f"B={first['batch_size']}", f"B={last['batch_size']}"
    return [
        compare(
            "bigger batch -> higher bound log(K+1)",
            "log_K_plus_1",
            (lo, first),
            (hi, last),
            higher=True,
        ),
        compare(
            "bigger batch -> higher certified MI log(K+1) - loss",
            "mi_estimate",
            (lo, first),
            (hi, last),
            higher=True,
        ),
        compare("bigger batch -> higher kNN", "knn", (lo, first), (hi, last), higher=True),
        compare(
            "bigger batch -> higher linear probe",
            "linear_probe",
            (lo, first),
            (hi, last),
            higher=True,
        ),
    ]

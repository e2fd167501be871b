"""The toy experiment: the post's printed numbers next to measured ones.

Two settings of SimCLR on the five 2-D toy clusters, both spelled out here (not read from a
recipe file, so the experiment stays what it says when recipes change):

- ``classic``: the post's settings, today's ``contrastkit train --method simclr --data toy``:
  an MLP 2 -> 8 with a ReLU at its output, projection 8 -> 4, batch 16, 100 steps,
  temperature 0.5, AdamW at lr 1e-2 without weight decay or warm-up;
- ``recipe``: the same with an encoder that can separate the clusters (2 -> 64 -> 16, no ReLU at
  the output, so h can point in any direction): ``configs/toy.toml``.

Measured on the held-out points: the first logged loss, the separation gap of h before training
(the same initial weights) and after, and the mean cosine of same-cluster and different-cluster
pairs after training. A number matches the post when it is within ``TOLERANCE`` or two standard
deviations over seeds, whichever is larger.
"""

from __future__ import annotations

from typing import Any

from contrastkit.evaluation import metrics as ev
from contrastkit.experiments.common import (
    Claim,
    Column,
    Plan,
    Result,
    aggregate,
    features,
    for_each_seed,
    format_table,
    train_run,
)
from contrastkit.experiments.figures import plot_grouped
from contrastkit.training.runs import build_method, eval_splits

NAME = "toy"
STEPS = 100
TOLERANCE = 0.05
COMMON = {
    "method": "simclr",
    "batch_size": 16,
    "temperature": 0.5,
    "lr": 1e-2,
    "weight_decay": 0.0,
    "warmup_steps": 0,
    "backbone": "mlp",
    "method_options": {"hidden_dim": 8, "out_dim": 4},
}
SETTINGS: dict[str, dict[str, Any]] = {
    "classic": {"backbone_options": {"hidden_dims": [8], "final_relu": True}},
    "recipe": {"backbone_options": {"hidden_dims": [64, 16], "final_relu": False}},
}
# the post's printed numbers (docs/training.md, "claimed vs measured")
CLAIMED: dict[str, tuple[str, float]] = {
    "first_loss": ("first loss", 3.39),
    "gap_before": ("gap before training", 0.024),
    "same_cosine_after": ("same-cluster cosine after", 0.812),
    "different_cosine_after": ("different-cluster cosine after", -0.128),
    "gap_after": ("gap after training", 0.94),
}
COLUMNS = [
    Column("quantity", "quantity"),
    Column("claimed", "claimed", spread=False),
    Column("classic", "classic"),
    Column("recipe", "recipe"),
]


def run(plan: Plan) -> Result:
    """Train both settings for every seed; return the claimed-vs-measured rows."""
    if plan.data != "toy":
        raise ValueError(f"--data {plan.data}: the toy experiment runs on --data toy only")
    steps = plan.steps_or(quick=STEPS, full=STEPS)  # the post's 100 steps, quick or not

    def measure(seed: int) -> list[dict]:
        records = []
        for setting, fields in SETTINGS.items():
            trained = train_run(plan, f"simclr-{setting}", seed, steps=steps, **COMMON, **fields)
            _, _, test_h, test_y = features(trained)
            _, test_ds = eval_splits(trained.config)
            initial = build_method(trained.config)  # the run's initial weights (seeded)
            before, _ = ev.embed_dataset(initial, test_ds)
            after = ev.separation(test_h, test_y)
            records.append(
                {
                    "setting": setting,
                    "first_loss": float(trained.summary["first_loss"]),
                    "gap_before": ev.separation_gap(before, test_y),
                    "same_cosine_after": after["same"],
                    "different_cosine_after": after["different"],
                    "gap_after": after["gap"],
                }
            )
        return records

    records = for_each_seed(plan, measure)
    by_setting = {row["setting"]: row for row in aggregate(records, ["setting"])}
    rows = []
    for key, (quantity, claimed) in CLAIMED.items():
        row: dict[str, Any] = {"quantity": quantity, "key": key, "claimed": claimed}
        for setting, measured in by_setting.items():
            row[setting] = measured[key]
            row[f"{setting}_std"] = measured[f"{key}_std"]
        rows.append(row)
    figure = plot_grouped(
        rows,
        "quantity",
        [
            ("claimed", "the post"),
            ("classic", "classic (2-8 ReLU h)"),
            ("recipe", "recipe (2-64-16 h)"),
        ],
        plan.out / "toy.png",
        title=f"SimCLR on the toy clusters: claimed vs measured ({plan.seeds} seeds)",
        ylabel="value (held-out points)",
    )
    return Result(
        NAME,
        rows,
        records,
        toy_claims(rows),
        format_table(rows, COLUMNS),
        figure,
        settings={"steps": steps, "common": COMMON, "settings": SETTINGS},
    )


def matches(row: dict[str, Any], setting: str) -> bool:
    """Return whether ``setting``'s mean is within the tolerance of the claimed number."""
    allowed = max(TOLERANCE, 2 * row[f"{setting}_std"])
    return abs(row[setting] - row["claimed"]) <= allowed


def toy_claims(rows: list[dict[str, Any]]) -> list[Claim]:
    """Return, per quantity, whether the classic settings reproduce the post's number; then
    whether the recipe reaches the post's separation after training."""
    claims = [
        Claim(
            f"the classic settings give the post's {row['quantity']} ({row['claimed']:g})",
            matches(row, "classic"),
            f"measured {row['classic']:.3f} ± {row['classic_std']:.3f}",
        )
        for row in rows
    ]
    gap = next(r for r in rows if r["key"] == "gap_after")
    claims.append(
        Claim(
            f"an encoder with a linear output reaches the post's gap after training "
            f"({gap['claimed']:g})",
            gap["recipe"] >= gap["claimed"] - TOLERANCE,
            f"recipe {gap['recipe']:.3f} ± {gap['recipe_std']:.3f}, classic {gap['classic']:.3f}",
        )
    )
    return claims

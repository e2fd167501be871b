"""Collapse: take away the mechanism each non-contrastive method relies on, and watch it collapse.

Each method is trained as the paper has it and with one mechanism removed, through its own
constructor options:

- SimSiam without the stop-gradient (``stop_gradient=False``);
- BYOL without the predictor (``predictor=False``: the online projection must match the
  target's directly);
- DINO without centering (``center_momentum=1.0``: the center stays at its initial 0) and
  without sharpening (``teacher_temp = warmup_teacher_temp = student_temp = 0.1``: the teacher
  is no sharper than the student);
- Barlow Twins without its redundancy-reduction term (``lambda_offdiag=0``);
- VICReg without its variance and covariance terms (``std_coeff = cov_coeff = 0``).

Collapse is measured on the held-out split: the effective rank of h and of z (the method's
``embedding`` output, the space of the loss; 1: every sample maps to one direction), the spread
of z (``collapse_of``), and kNN accuracy of h. DINO runs at the size of its digits recipe, for
short runs (``DINO_SHORT``). DINO needs multi-crop views, which points (``toy``) do not have:
there it is left out.
"""

from __future__ import annotations

from typing import Any

import torch

from contrastkit.data import build_dataset
from contrastkit.evaluation import metrics as ev
from contrastkit.experiments.common import (
    FAST_SETUPS,
    Claim,
    Column,
    Plan,
    Result,
    Run,
    aggregate,
    compare,
    features,
    for_each_seed,
    format_table,
    heldout_views,
    train_run,
)
from contrastkit.experiments.figures import plot_bars

NAME = "collapse"
QUICK_BATCH = 128
# below this spread of z the full method has collapsed itself and cannot serve as the baseline
HEALTHY_SPREAD = 0.1
# DINO at the size of its digits recipe (training/recipes/dino-digits.toml: 256 prototypes, a
# 64-d bottleneck, teacher temperature fixed at 0.04, momentum 0.99); no frozen last layer,
# longer than these runs. With the paper's sizes it drifts to the uniform output in 60 steps.
DINO_SHORT = {
    "out_dim": 256,
    "hidden_dim": 256,
    "bottleneck_dim": 64,
    "momentum": 0.99,
    "teacher_temp": 0.04,
    "warmup_teacher_temp": 0.04,
    "warmup_teacher_temp_epochs": 0,
    "freeze_last_layer": 0,
}
NO_SHARPENING = {"teacher_temp": 0.1, "warmup_teacher_temp": 0.1, "student_temp": 0.1}
# (method, variant name, constructor options); each method's full version comes first
VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("simsiam", "SimSiam", {}),
    ("simsiam", "SimSiam without stop-gradient", {"stop_gradient": False}),
    ("byol", "BYOL", {}),
    ("byol", "BYOL without predictor", {"predictor": False}),
    ("dino", "DINO", DINO_SHORT),
    ("dino", "DINO without centering", {**DINO_SHORT, "center_momentum": 1.0}),
    ("dino", "DINO without sharpening", {**DINO_SHORT, **NO_SHARPENING}),
    ("barlow_twins", "Barlow Twins", {}),
    ("barlow_twins", "Barlow Twins without redundancy term", {"lambda_offdiag": 0.0}),
    ("vicreg", "VICReg", {}),
    ("vicreg", "VICReg without variance and covariance", {"std_coeff": 0.0, "cov_coeff": 0.0}),
]
COLUMNS = [
    Column("variant", "variant"),
    Column("effective_rank", "eff. rank of h", "{:.1f}"),
    Column("effective_rank_z", "eff. rank of z", "{:.1f}"),
    Column("spread_z", "spread of z"),
    Column("knn", "kNN"),
    Column("final_loss", "final loss"),
]


def variants(plan: Plan) -> list[tuple[str, str, dict[str, Any]]]:
    """Return the variants that run on ``plan.data`` (no DINO on points: no multi-crop)."""
    points = getattr(build_dataset(plan.data, train=True), "kind", None) == "points"
    return [v for v in VARIANTS if not (points and v[0] == "dino")]


def collapse_of(z: torch.Tensor) -> dict[str, float]:
    """Return the effective rank of z (N, D) and its spread: the std over samples of the unit
    rows, averaged over dimensions, times sqrt(D) (SimSiam's measure: about 1 when the rows
    point everywhere, 0 when they all point the same way)."""
    unit = torch.nn.functional.normalize(z.double(), dim=1)
    return {
        "effective_rank_z": ev.effective_rank(z),
        "spread_z": float(unit.std(dim=0).mean() * z.shape[1] ** 0.5),
    }


@torch.no_grad()
def projection(trained: Run) -> torch.Tensor:
    """Return the method's ``embedding`` output (z, (N, D)) for views of the held-out split."""
    method = trained.method
    method.setup(trained.config.steps, trained.config.steps)  # DINO's schedules need it
    return method.training_step(heldout_views(trained))["embedding"]


def run(plan: Plan) -> Result:
    """Train every variant for every seed; return rows, claims, table and figure."""
    steps = plan.steps_or(quick=60, full=400)
    usual = FAST_SETUPS.get(plan.data, {}).get("batch_size", 256)
    batch = min(usual, QUICK_BATCH) if plan.quick else usual
    chosen = variants(plan)
    # the MLP on digits cannot take DINO's smaller local crops: 2 global crops only
    dino_views = {"n_local": 0} if plan.data == "digits" else {}

    def measure(seed: int) -> list[dict]:
        records = []
        for method, variant, options in chosen:
            slug = variant.lower().replace(" ", "-")
            trained = train_run(
                plan,
                slug,
                seed,
                method=method,
                steps=steps,
                method_options=dict(options),
                batch_size=batch,
                view_options=dino_views if method == "dino" else {},
            )
            train_h, train_y, test_h, test_y = features(trained)
            records.append(
                {
                    "method": method,
                    "variant": variant,
                    "effective_rank": ev.effective_rank(test_h),
                    **collapse_of(projection(trained)),
                    "knn": ev.knn_accuracy(train_h, train_y, test_h, test_y),
                    "final_loss": float(trained.summary["final_loss"]),
                }
            )
        return records

    records = for_each_seed(plan, measure)
    rows = aggregate(records, ["method", "variant"])
    figure = plot_bars(
        rows,
        "variant",
        [
            ("effective_rank", "effective rank of h"),
            ("effective_rank_z", "effective rank of z"),
            ("spread_z", "spread of z (1: everywhere, 0: one point)"),
            ("knn", "kNN accuracy of h"),
        ],
        plan.out / "collapse.png",
        title=f"What stops collapse, on {plan.data} ({steps} steps each, {plan.seeds} seeds)",
        groups=[r["method"] for r in rows],
    )
    return Result(
        NAME,
        rows,
        records,
        collapse_claims(rows),
        format_table(rows, COLUMNS),
        figure,
        settings={
            "steps": steps,
            "variants": [{"method": m, "variant": v, "options": o} for m, v, o in chosen],
        },
    )


def collapse_claims(rows: list[dict[str, Any]]) -> list[Claim]:
    """Return one claim per ablation: z collapses (a lower effective rank or spread than the full
    method's, beyond the spread over seeds); kNN of h is given with it. A full method whose own
    spread is below ``HEALTHY_SPREAD`` leaves its ablations unjudged (the claim does not hold)."""
    full: dict[str, dict[str, Any]] = {}
    claims = []
    for row in rows:
        if row["method"] not in full:
            full[row["method"]] = row
            continue
        ref = full[row["method"]]
        text = f"{row['variant']} collapses z"
        if ref["spread_z"] < HEALTHY_SPREAD:  # nothing to compare with
            claims.append(
                Claim(
                    text,
                    False,
                    f"the full {row['method']} collapsed too (spread "
                    f"of z {ref['spread_z']:.3f}, final loss {ref['final_loss']:.3f})",
                )
            )
            continue
        rank = compare("", "effective_rank_z", ("", ref), ("", row), higher=False)
        spread = compare("", "spread_z", ("", ref), ("", row), higher=False)
        evidence = (
            f"rank of z {ref['effective_rank_z']:.1f} -> {row['effective_rank_z']:.1f}, spread of"
            f" z {ref['spread_z']:.2f} -> {row['spread_z']:.2f}; kNN of h {ref['knn']:.3f} -> "
            f"{row['knn']:.3f}"
        )
        claims.append(Claim(text, rank.holds or spread.holds, evidence))
    return claims

"""Projection head: h, before the head, transfers better than z, the head's output.

SimCLR with a 3-layer head (Linear-BN-ReLU, Linear-BN-ReLU, Linear: SimCLR v2's) is trained once
per seed; a linear probe (and kNN) is then fitted on h, on the output of each hidden layer of the
head, and on z. The head's layers are applied one by one from the ``nn.Sequential`` (no hooks).

Letters used in shapes: M training samples, N held-out samples, F width of a representation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

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
    probe_scores,
    train_run,
)
from contrastkit.experiments.figures import plot_bars

NAME = "projection-head"
HEAD_LAYERS = 3
COLUMNS = [
    Column("representation", "representation"),
    Column("dim", "width", "{:d}"),
    Column("linear_probe", "linear probe"),
    Column("knn", "kNN"),
]


@torch.no_grad()
def head_outputs(head: nn.Sequential, h: Tensor) -> dict[str, Tensor]:
    """Return h (M, F) and the head's output after each hidden block and at its end (z).

    A hidden block ends at its activation; names are ``"h"``, ``"head layer 1"``, ... and
    ``"z"``.
    """
    was_training = head.training
    head.eval()
    try:
        outputs, x, layer = {"h": h}, h, 0
        for module in head:
            x = module(x)
            if isinstance(module, (nn.ReLU, nn.GELU)):
                layer += 1
                outputs[f"head layer {layer}"] = x
        outputs["z"] = x
    finally:
        head.train(was_training)
    return outputs


def run(plan: Plan) -> Result:
    """Train SimCLR with a 3-layer head for every seed and probe every representation."""
    steps = plan.steps_or(quick=150, full=600)

    def measure(seed: int) -> list[dict]:
        trained = train_run(
            plan,
            "simclr-head3",
            seed,
            method="simclr",
            steps=steps,
            method_options={"projector_layers": HEAD_LAYERS},
        )
        train_h, train_y, test_h, test_y = features(trained)
        head = trained.method.projector.layers
        train_reps, test_reps = head_outputs(head, train_h), head_outputs(head, test_h)
        return [
            {
                "representation": name,
                "dim": int(test_reps[name].shape[1]),
                **probe_scores(train_reps[name], train_y, test_reps[name], test_y),
            }
            for name in train_reps
        ]

    records = for_each_seed(plan, measure)
    rows = aggregate(records, ["representation"])
    figure = plot_bars(
        rows,
        "representation",
        [("linear_probe", "linear probe accuracy"), ("knn", "kNN accuracy")],
        plan.out / "projection_head.png",
        title=f"SimCLR on {plan.data}: where to cut ({steps} steps, {plan.seeds} seeds)",
        zoom=True,
    )
    return Result(
        NAME,
        rows,
        records,
        claims(rows),
        format_table(rows, COLUMNS),
        figure,
        settings={"method": "simclr", "steps": steps, "projector_layers": HEAD_LAYERS},
    )


def claims(rows: list[dict]) -> list[Claim]:
    """Return the claims, from z (the last row) to h (the first)."""
    h, z = rows[0], rows[-1]
    probes = [r["linear_probe"] for r in rows]
    return [
        compare(
            "h transfers better than z (linear probe)",
            "linear_probe",
            ("z", z),
            ("h", h),
            higher=True,
        ),
        compare("h transfers better than z (kNN)", "knn", ("z", z), ("h", h), higher=True),
        Claim(
            "the linear probe falls layer by layer through the head",
            all(a >= b for a, b in zip(probes[:-1], probes[1:], strict=True)),
            " -> ".join(f"{r['representation']} {r['linear_probe']:.3f}" for r in rows),
        ),
    ]

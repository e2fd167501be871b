"""What every experiment shares: its size, one training run, features of h, rows over seeds.

An experiment trains a few short runs through the engine (``contrastkit.training.trainer.train``
with a ``TrainConfig``), one run folder each under ``DIR/runs/``, measures each trained model,
and reduces the per-seed measurements to one row per setting with the mean and the standard
deviation over seeds (``aggregate``). ``finish`` writes ``DIR/results.json`` atomically.

Letters used in shapes: N samples, F feature width of h, D projection width.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from contrastkit.evaluation import metrics as ev
from contrastkit.methods import Method
from contrastkit.training.batches import ViewDataset, collate_views
from contrastkit.training.config import TrainConfig
from contrastkit.training.runs import SUMMARY_FILE, eval_splits, load_run, write_json
from contrastkit.training.trainer import train
from contrastkit.transforms import build_view_fn

RESULTS_FILE = "results.json"
# views of the held-out split are drawn as if from this (never trained) epoch
HELDOUT_VIEW_EPOCH = -1

# Settings of the two built-in small datasets that make a run take seconds on a CPU. Digits use
# an MLP on the 64 pixels instead of the data's default CNN: about 20x cheaper per step, and its
# linear h (no final ReLU) can point anywhere. Other data keep the dataset's defaults.
FAST_SETUPS: dict[str, dict[str, Any]] = {
    "digits": {
        "backbone": "mlp",
        "backbone_options": {"hidden_dims": [256, 64], "final_relu": False},
        "method_options": {"hidden_dim": 512, "out_dim": 128},
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "batch_size": 256,
    },
    "toy": {
        "backbone": "mlp",
        "backbone_options": {"hidden_dims": [64, 16], "final_relu": False},
        "method_options": {"hidden_dim": 8, "out_dim": 4},
        "lr": 1e-2,
        "weight_decay": 0.0,
        "batch_size": 16,
    },
}


@dataclass(frozen=True)
class Plan:
    """How one experiment is run.

    Attributes:
        out: the experiment folder (``results.json``, the figure, ``runs/``).
        data: the dataset spec every run trains on.
        seeds: runs per setting (seeds 0 .. seeds-1).
        quick: fewer settings and steps (each experiment < 5 min on a 2-core CPU).
        steps: overrides every run's number of steps (tests); None: the experiment's choice.
    """

    out: Path
    data: str
    seeds: int = 3
    quick: bool = False
    steps: int | None = None

    def steps_or(self, quick: int, full: int) -> int:
        """Return the override, else ``quick`` or ``full`` steps."""
        if self.steps is not None:
            return self.steps
        return quick if self.quick else full


@dataclass
class Run:
    """A trained run: the method (eval mode, on the CPU), its resolved config and summary."""

    method: Method
    config: TrainConfig
    summary: dict[str, Any]
    folder: Path


def train_run(plan: Plan, name: str, seed: int, **fields: Any) -> Run:
    """Train one run into ``plan.out/runs/NAME-seedS`` and reload it.

    ``fields`` are ``TrainConfig`` fields on top of ``FAST_SETUPS[data]``; ``method_options``
    and ``backbone_options`` given here are merged into the setup's.
    """
    values: dict[str, Any] = {k: _copy(v) for k, v in FAST_SETUPS.get(plan.data, {}).items()}
    for key in ("method_options", "backbone_options", "view_options"):
        values[key] = {**values.get(key, {}), **fields.pop(key, {})}
    values.update(fields)
    steps = int(values["steps"])
    values |= {
        "data": plan.data,
        "seed": seed,
        "out": str(plan.out / "runs" / f"{name}-seed{seed}"),
        "warmup_steps": values.get("warmup_steps", 0),
        "preset": "paper",  # exactly these settings: no built-in recipe underneath
        "eval": False,  # measured here, on what each experiment needs
        "eval_every": 0,
        "progress": False,
        "checkpoint_every": steps,  # one checkpoint, at the end: what load_run reads
        "log_every": max(1, steps // 20),
    }
    folder = train(TrainConfig(**values), overwrite=True)
    method, config = load_run(folder)
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    return Run(method, config, summary, folder)


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def features(run: Run) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Return h and labels of the training and held-out splits: (M, F), (M,), (N, F), (N,)."""
    train_ds, test_ds = eval_splits(run.config)
    bs = run.config.eval_batch_size
    train_h, train_y = ev.embed_dataset(run.method, train_ds, bs)
    test_h, test_y = ev.embed_dataset(run.method, test_ds, bs)
    return train_h, train_y, test_h, test_y


def probe_scores(train_f: Tensor, train_y: Tensor, test_f: Tensor, test_y: Tensor) -> dict:
    """Return ``{"knn": ..., "linear_probe": ...}`` of features (M, F) / (N, F)."""
    return {
        "knn": ev.knn_accuracy(train_f, train_y, test_f, test_y),
        "linear_probe": ev.linear_probe_accuracy(train_f, train_y, test_f, test_y),
    }


def heldout_views(run: Run, recipe: str | None = None) -> list[Tensor]:
    """Return reproducible views of every held-out sample: V tensors (N, ...) of ``recipe``."""
    _, test_ds = eval_splits(run.config)
    view_fn = build_view_fn(recipe or run.method.view_recipe, test_ds, **run.config.view_options)
    views = ViewDataset(test_ds, view_fn, run.config.seed, HELDOUT_VIEW_EPOCH)
    return collate_views([views[i] for i in range(len(test_ds))])


def aggregate(records: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Reduce per-seed records to one row per setting (the values of ``keys``), in first-seen order.

    Each numeric measurement ``m`` becomes ``m`` (the mean over seeds) and ``m_std`` (the sample
    standard deviation, 0 for one seed); ``seeds`` counts the records of the row. Other values
    (ints such as K, strings) are the same for every seed and are kept as they are.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(tuple(record[k] for k in keys), []).append(record)
    rows = []
    for group in groups.values():
        row: dict[str, Any] = {k: group[0][k] for k in keys}
        for name in group[0]:
            if name in keys or name == "seed":
                continue
            values = [r[name] for r in group]
            if all(isinstance(v, float) for v in values):  # a measurement
                row[name] = statistics.fmean(values)
                row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            else:  # a count or a name, the same for every seed (K, the method)
                row[name] = values[0]
        row["seeds"] = len(group)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Column:
    """A table column: the row key, its header, the number format and whether to show ± std.

    ``spread=False`` for values that are the same for every seed (log(K+1), 1/K).
    """

    key: str
    header: str
    fmt: str = "{:.3f}"
    spread: bool = True


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Return the rows as an aligned text table; a measurement with ``_std`` shows mean ± std."""
    cells = [[c.header for c in columns]]
    for row in rows:
        line = []
        for c in columns:
            value = row.get(c.key)
            if isinstance(value, float) and math.isfinite(value) or isinstance(value, int):
                text = c.fmt.format(value) if not isinstance(value, bool) else str(value)
                if c.spread and f"{c.key}_std" in row:
                    text += " ± " + c.fmt.format(row[f"{c.key}_std"])
            else:
                text = "-" if value is None else str(value)
            line.append(text)
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [
        "  ".join(
            t.rjust(w) if i else t.ljust(w) for i, (t, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


@dataclass(frozen=True)
class Claim:
    """One claim of the post, checked against the rows.

    Attributes:
        text: the claim ("bigger batch -> higher kNN").
        holds: whether the measurements agree.
        evidence: the numbers it rests on ("0.91 at B=16 -> 0.95 at B=1024").
    """

    text: str
    holds: bool
    evidence: str

    def line(self) -> str:
        """Return ``"claim: TEXT: holds (EVIDENCE)"`` (or ``does not hold``)."""
        return f"claim: {self.text}: {'holds' if self.holds else 'does not hold'} ({self.evidence})"


def compare(
    text: str, key: str, low: tuple[str, dict], high: tuple[str, dict], higher: bool
) -> Claim:
    """Return the claim that measurement ``key`` is higher (or lower) at ``high`` than at ``low``.

    ``low`` and ``high`` are ``(label, row)``, e.g. ``("B=16", row)``, rows of ``aggregate``.
    The claim holds when the means move the claimed way by more than the larger of the two
    standard deviations over seeds: a difference inside the spread of seeds is no evidence.
    """
    (low_label, low_row), (high_label, high_row) = low, high
    a, b = low_row[key], high_row[key]
    spread = max(low_row.get(f"{key}_std", 0.0), high_row.get(f"{key}_std", 0.0))
    holds = (b - a if higher else a - b) > spread
    evidence = f"{_pm(low_row, key)} at {low_label} -> {_pm(high_row, key)} at {high_label}"
    if (b > a) == higher and not holds:
        evidence += ", a change within the spread over seeds"
    return Claim(text, holds, evidence)


def _pm(row: dict, key: str) -> str:
    std = row.get(f"{key}_std")
    return f"{row[key]:.3f}" + (f" ± {std:.3f}" if std else "")


@dataclass
class Result:
    """What an experiment hands back: rows, per-seed records, claims, table and figure."""

    experiment: str
    rows: list[dict[str, Any]]
    records: list[dict[str, Any]]
    claims: list[Claim]
    table: str
    figure: Path
    settings: dict[str, Any] = field(default_factory=dict)


def finish(plan: Plan, result: Result) -> Path:
    """Write ``plan.out/results.json`` (atomically) and return its path."""
    path = plan.out / RESULTS_FILE
    write_json(
        path,
        {
            "experiment": result.experiment,
            "data": plan.data,
            "seeds": plan.seeds,
            "quick": plan.quick,
            "settings": result.settings,
            "rows": result.rows,
            "claims": [
                {"claim": c.text, "holds": c.holds, "evidence": c.evidence} for c in result.claims
            ],
            "figure": result.figure.name,
            "runs": result.records,
        },
    )
    return path


def for_each_seed(plan: Plan, measure: Callable[[int], list[dict[str, Any]]]) -> list[dict]:
    """Return ``measure(seed)``'s records for every seed, each tagged with its seed."""
    records = []
    for seed in range(plan.seeds):
        records += [{"seed": seed, **r} for r in measure(seed)]
    return records


@torch.no_grad()
def unit_rows(z: Tensor) -> Tensor:
    """Return z (N, D) with every row scaled to length 1."""
    return torch.nn.functional.normalize(z.double(), dim=1)


__all__ = [
    "FAST_SETUPS",
    "RESULTS_FILE",
    "Claim",
    "Column",
    "Plan",
    "Result",
    "Run",
    "aggregate",
    "compare",
    "features",
    "finish",
    "for_each_seed",
    "format_table",
    "heldout_views",
    "probe_scores",
    "train_run",
    "unit_rows",
]

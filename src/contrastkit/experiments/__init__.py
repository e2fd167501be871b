"""Experiments: the post's claims, measured by short trainings through the engine.

An app on top of the training engine, like the CLI: it may import ``contrastkit.training`` and
the library, and nothing in the library or the engine imports it. Each experiment is a module
with ``NAME`` and ``run(plan) -> Result``; ``EXPERIMENTS`` lists them explicitly.

    contrastkit experiment batch-size --quick --out runs/exp-batch

``run_experiment`` trains the runs into ``OUT/runs/``, writes ``OUT/results.json`` (atomically)
and the figure, and returns the ``Result`` (rows, claims, table).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from contrastkit.experiments import batch_size, collapse, projection_head, temperature, toy
from contrastkit.experiments.common import RESULTS_FILE, Claim, Plan, Result, finish

EXPERIMENTS: dict[str, ModuleType] = {
    module.NAME: module for module in (batch_size, temperature, projection_head, collapse, toy)
}
# the cheapest data that shows each claim
DEFAULT_DATA: dict[str, str] = {
    "batch-size": "digits",
    "temperature": "digits",
    "projection-head": "digits",
    "collapse": "digits",
    "toy": "toy",
}


def run_experiment(
    name: str,
    out: str | os.PathLike,
    *,
    data: str | None = None,
    seeds: int = 3,
    quick: bool = False,
    steps: int | None = None,
) -> Result:
    """Run experiment ``name`` into the folder ``out``; return its rows, claims and table.

    Args:
        name: one of ``EXPERIMENTS``.
        out: the experiment folder (created; run folders of an earlier run are replaced).
        data: the dataset spec; None: ``DEFAULT_DATA[name]``.
        seeds: runs per setting, seeds 0 .. seeds-1 (>= 1).
        quick: fewer settings and steps (each experiment under 5 min on a 2-core CPU).
        steps: every run's number of steps, overriding the experiment's (for tests).

    Raises:
        ValueError: unknown name, seeds < 1, steps < 1, or data the experiment cannot use.
        OSError: ``out`` cannot be created or written.
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; expected one of: {', '.join(EXPERIMENTS)}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be an int >= 1, got {seeds!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    plan = Plan(folder, data or DEFAULT_DATA[name], seeds=seeds, quick=quick, steps=steps)
    result = EXPERIMENTS[name].run(plan)
    finish(plan, result)
    return result


__all__ = [
    "DEFAULT_DATA",
    "EXPERIMENTS",
    "RESULTS_FILE",
    "Claim",
    "Plan",
    "Result",
    "run_experiment",
]

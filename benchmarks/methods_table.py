"""The numbers of ``benchmarks/methods.py``: one record per run, rows over seeds, the criteria.

Pure functions on what a run leaves behind (``summary.json`` and the ``eval`` lines of
``metrics.jsonl``) plus the whole-process time and peak memory the benchmark measured, so that
they can be tested on made-up summaries.

The criteria are those of issue #14 ("Done when"), each checked on the mean over seeds:

- budget: the whole process (training and evaluation) of every run within 240 s on ``shapes``
  and 120 s on ``digits``;
- on ``shapes``, every self-supervised method's kNN accuracy gains at least 0.15 over its own
  random initialisation, and at least half of what ``supervised`` gains;
- on ``digits``, SimCLR (the default method) beats raw pixels with kNN and with the linear probe.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SUPERVISED = "supervised"
DEFAULT_METHOD = "simclr"
BUDGET_S = {"shapes": 240.0, "digits": 120.0}
MIN_GAIN = 0.15  # kNN accuracy over random init, on shapes
MIN_SUPERVISED_FRACTION = 0.5  # of supervised's gain over its random init, on shapes
BUDGET = "whole-process seconds (slowest seed)"
GAIN = "kNN gain over random init"
FRACTION = "fraction of supervised's gain"


def run_record(
    summary: dict, eval_lines: Iterable[dict], *, seed: int, wall_s: float, peak_mib: float
) -> dict:
    """Return the benchmark's record of one run.

    Args:
        summary: the run's ``summary.json`` (with its ``eval`` of trained h, raw input and
            random init).
        eval_lines: the ``{"event": "eval", "step": s, "knn": a}`` lines of ``metrics.jsonl``.
        seed: the run's ``--seed``.
        wall_s: seconds of the whole process (start, data, training, evaluation, plots).
        peak_mib: the process's peak resident memory (VmHWM) in MiB.
    """
    ev = summary["eval"]
    return {
        "method": summary["method"],
        "data": summary["data"],
        "seed": seed,
        "steps": summary["steps"],
        "knn": ev["trained"]["knn"],
        "probe": ev["trained"]["linear_probe"],
        "raw_knn": ev["raw"]["knn"],
        "raw_probe": ev["raw"]["linear_probe"],
        "init_knn": ev["random_init"]["knn"],
        "init_probe": ev["random_init"]["linear_probe"],
        "train_s": summary["train_seconds"],
        "wall_s": wall_s,
        "peak_mib": peak_mib,
        "curve": [
            [line["step"], line["knn"]] for line in eval_lines if line.get("event") == "eval"
        ],
    }


def mean_std(values: list[float]) -> tuple[float, float]:
    """Return the mean and the sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def aggregate(records: list[dict]) -> list[dict]:
    """Return one row per (data, method), in the order first seen: means and stds over seeds.

    Each row has ``knn``, ``probe``, ``init_knn``, ``init_probe``, ``raw_knn``, ``raw_probe``,
    ``train_s``, ``wall_s``, ``peak_mib`` as (mean, std), ``gain`` (mean kNN minus mean
    random-init kNN), ``seeds``, and, where the data has a supervised row, ``fraction``
    (``gain`` over supervised's gain).
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["data"], r["method"]), []).append(r)
    keys = ("knn", "probe", "init_knn", "init_probe", "raw_knn", "raw_probe")
    rows = []
    for (data, method), runs in groups.items():
        row = {"data": data, "method": method, "seeds": sorted(r["seed"] for r in runs)}
        for key in (*keys, "train_s", "wall_s", "peak_mib"):
            row[key] = mean_std([r[key] for r in runs])
        row["max_wall_s"] = max(r["wall_s"] for r in runs)
        row["gain"] = row["knn"][0] - row["init_knn"][0]
        rows.append(row)
    supervised_gain = {r["data"]: r["gain"] for r in rows if r["method"] == SUPERVISED}
    for row in rows:
        reference = supervised_gain.get(row["data"])
        if reference is not None and row["method"] != SUPERVISED:
            row["fraction"] = row["gain"] / reference if reference > 0 else math.nan
    return rows


def criteria(rows: list[dict]) -> list[dict]:
    """Return the issue's criteria that these rows can decide, one dict per check.

    Each check: ``data``, ``method``, ``what`` (words), ``value``, ``target`` (words) and
    ``passed``. A check that needs a row the rows lack (no supervised run) is left out.
    """
    checks = []

    def check(row: dict, what: str, value: float, target: str, passed: bool) -> None:
        checks.append(
            {"data": row["data"], "method": row["method"], "what": what, "value": value}
            | {"target": target, "passed": bool(passed)}
        )

    for row in rows:
        budget = BUDGET_S.get(row["data"])
        if budget is not None:
            worst = row["max_wall_s"]
            check(row, BUDGET, worst, f"<= {budget:.0f}", worst <= budget)
        ssl = row["method"] != SUPERVISED
        if row["data"] == "shapes" and ssl:
            gain = row["gain"]
            check(row, GAIN, gain, f">= {MIN_GAIN}", gain >= MIN_GAIN)
            if "fraction" in row:
                frac = row["fraction"]
                target = f">= {MIN_SUPERVISED_FRACTION}"
                check(row, FRACTION, frac, target, frac >= MIN_SUPERVISED_FRACTION)
        if row["data"] == "digits" and row["method"] == DEFAULT_METHOD:
            for key, name in (("knn", "kNN"), ("probe", "linear probe")):
                margin = row[key][0] - row[f"raw_{key}"][0]
                check(row, f"{name} minus raw pixels", margin, "> 0", margin > 0)
    return checks


def _pm(pair: tuple[float, float], fmt: str = ".3f") -> str:
    mean, std = pair
    return f"{mean:{fmt}} ± {std:{fmt}}"


def _mark(passed: bool | None) -> str:
    return "–" if passed is None else ("pass" if passed else "**FAIL**")


def markdown(rows: list[dict], checks: list[dict]) -> str:
    """Return the Markdown tables: one per dataset (methods, raw pixels), then the criteria."""
    verdicts: dict[tuple[str, str], dict[str, bool]] = {}
    for c in checks:
        verdicts.setdefault((c["data"], c["method"]), {})[c["what"]] = c["passed"]
    out = []
    for data in dict.fromkeys(r["data"] for r in rows):
        mine = [r for r in rows if r["data"] == data]
        seeds = ", ".join(str(s) for s in mine[0]["seeds"])
        out += [
            f"**{data}** (seeds {seeds}; mean ± std over seeds)",
            "",
            "| method | kNN acc | linear probe | random init kNN | kNN gain | of supervised's gain "
            "| train s | whole process s | peak MiB | within budget | gain >= 0.15 "
            "| >= 1/2 supervised |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
        ]
        for r in mine:
            v = verdicts.get((data, r["method"]), {})
            frac = f"{r['fraction']:.2f}" if "fraction" in r else "–"
            out.append(
                f"| {r['method']} | {_pm(r['knn'])} | {_pm(r['probe'])} | {_pm(r['init_knn'])} "
                f"| {r['gain']:+.3f} | {frac} | {_pm(r['train_s'], '.0f')} "
                f"| {_pm(r['wall_s'], '.0f')} | {_pm(r['peak_mib'], '.0f')} "
                f"| {_mark(v.get(BUDGET))} | {_mark(v.get(GAIN))} | {_mark(v.get(FRACTION))} |"
            )
        raw_knn = mean_std([r["raw_knn"][0] for r in mine])
        raw_probe = mean_std([r["raw_probe"][0] for r in mine])
        out += [
            f"| raw pixels | {_pm(raw_knn)} | {_pm(raw_probe)} | | | | | | | | | |",
            "",
        ]
    out += [
        "| criterion | data | method | value | target | verdict |",
        "|---|---|---|---:|---|---|",
    ]
    for c in checks:
        out.append(
            f"| {c['what']} | {c['data']} | {c['method']} | {c['value']:.3f} | {c['target']} "
            f"| {_mark(c['passed'])} |"
        )
    passed = sum(c["passed"] for c in checks)
    out += ["", f"{passed} of {len(checks)} criteria met."]
    return "\n".join(out)

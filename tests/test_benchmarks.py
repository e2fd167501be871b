"""benchmarks/methods.py: its aggregation and criteria on made-up summaries, and its command line.

A real run of the benchmark trains every method (hours; ``--quick`` still takes about a minute
for its two processes), so the suite checks the arithmetic that turns runs into the table and
the verdicts, and the parts of the script that need no training.
"""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return sys.modules[name]


table = load("methods_table")
methods = load("methods")


def summary(method: str, data: str, knn: float, probe: float, init_knn: float) -> dict:
    """A summary.json as ``contrastkit train`` writes it, with the fields the benchmark reads."""

    def ev(k, p):
        return {"knn": k, "linear_probe": p, "separation_gap": 0.1}

    return {
        "method": method,
        "data": data,
        "steps": 100,
        "train_seconds": 50.0,
        "eval": {
            "trained": ev(knn, probe),
            "raw": ev(0.40, 0.50),
            "random_init": ev(init_knn, 0.45),
        },
    }


def record(method, data, seed, knn, probe=0.6, init_knn=0.30, wall=100.0):
    lines = [{"event": "step", "step": 1, "loss": 1.0}, {"event": "eval", "step": 50, "knn": knn}]
    return table.run_record(
        summary(method, data, knn, probe, init_knn), lines, seed=seed, wall_s=wall, peak_mib=900.0
    )


def test_run_record_takes_the_three_evaluations_and_the_eval_lines():
    r = record("byol", "shapes", 1, knn=0.7, probe=0.8, init_knn=0.3, wall=12.5)
    assert (r["knn"], r["probe"], r["init_knn"], r["raw_knn"]) == (0.7, 0.8, 0.3, 0.4)
    assert (r["seed"], r["wall_s"], r["peak_mib"], r["train_s"]) == (1, 12.5, 900.0, 50.0)
    assert r["curve"] == [[50, 0.7]]  # step lines are not part of the curve


def test_aggregate_gives_mean_std_over_seeds_gain_and_fraction_of_supervised():
    records = [
        record("supervised", "shapes", 0, knn=0.70),
        record("supervised", "shapes", 1, knn=0.90),  # mean 0.80: gain 0.50 over 0.30
        record("byol", "shapes", 0, knn=0.50),
        record("byol", "shapes", 1, knn=0.60),  # mean 0.55: gain 0.25, half of 0.50
    ]
    rows = {r["method"]: r for r in table.aggregate(records)}
    mean, std = rows["supervised"]["knn"]
    assert mean == pytest.approx(0.80) and std == pytest.approx(math.sqrt(0.02))
    assert rows["byol"]["gain"] == pytest.approx(0.25)
    assert rows["byol"]["fraction"] == pytest.approx(0.5)
    assert "fraction" not in rows["supervised"]
    assert rows["byol"]["seeds"] == [0, 1]


def test_criteria_pass_and_fail_at_the_issue_thresholds():
    records = [
        record("supervised", "shapes", 0, knn=0.80),  # gain 0.50
        record("byol", "shapes", 0, knn=0.56),  # gain 0.26 >= 0.15, fraction 0.52 >= 0.5
        record("dino", "shapes", 0, knn=0.40, wall=300.0),  # gain 0.10; over 240 s
        record("simclr", "digits", 0, knn=0.45, probe=0.49),  # raw: 0.40 kNN, 0.50 probe
    ]
    checks = table.criteria(table.aggregate(records))
    verdict = {(c["method"], c["what"]): c["passed"] for c in checks}
    assert verdict["byol", table.GAIN] and verdict["byol", table.FRACTION]
    assert not verdict["dino", table.GAIN] and not verdict["dino", table.FRACTION]
    assert not verdict["dino", table.BUDGET] and verdict["byol", table.BUDGET]
    assert verdict["simclr", "kNN minus raw pixels"]
    assert not verdict["simclr", "linear probe minus raw pixels"]
    assert ("supervised", table.GAIN) not in verdict  # the yardstick is not judged by itself
    text = table.markdown(table.aggregate(records), checks)
    assert "| raw pixels | 0.400 ± 0.000 | 0.500 ± 0.000 |" in text
    assert f"{sum(c['passed'] for c in checks)} of {len(checks)} criteria met." in text
    assert "**FAIL**" in text


def test_mean_curve_keeps_the_steps_every_seed_evaluated():
    runs = [{"curve": [[10, 0.2], [20, 0.4]]}, {"curve": [[10, 0.4], [20, 0.6], [30, 0.9]]}]
    steps, knn = methods.mean_curve(runs)
    assert steps == [10, 20] and knn == pytest.approx([0.3, 0.5])


def test_a_finished_run_is_reused_while_its_recipe_is_unchanged(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    fingerprint = methods.recipe_fingerprint("simclr", "digits")
    done = record("simclr", "digits", 0, knn=0.9) | {"recipe_sha256": fingerprint}
    (records / "simclr-digits-seed0.json").write_text(json.dumps(done | {"steps_flag": None}))
    reused = methods.run_one("simclr", "digits", 0, tmp_path / "runs", records, steps=None)
    assert reused["knn"] == 0.9
    path = records / "simclr-digits-seed0.json"
    assert methods.saved_record(path, fingerprint, steps=None) is not None
    assert methods.saved_record(path, "another recipe", steps=None) is None  # retrained
    assert methods.saved_record(path, fingerprint, steps=20) is None  # another length
    assert fingerprint != methods.recipe_fingerprint("byol", "digits")
    methods.save_curves(tmp_path / "curves.png", [done, record("supervised", "digits", 0, 0.95)])
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_table_only_prints_the_records_there_are_and_says_partial(tmp_path, capsys):
    records = tmp_path / "records"
    records.mkdir()
    for method, knn in (("simclr", 0.9), ("supervised", 0.95)):
        mark = {"recipe_sha256": methods.recipe_fingerprint(method, "digits"), "steps_flag": None}
        saved = record(method, "digits", 0, knn) | mark
        (records / f"{method}-digits-seed0.json").write_text(json.dumps(saved))
    argv = ["--data", "digits", "--seeds", "0", "--table-only", "--records", str(records)]
    assert methods.main([*argv, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "PARTIAL: 7 of the 9 runs" in out and "| simclr | 0.900" in out


def test_train_argv_is_the_users_command():
    argv = methods.train_argv("moco", "shapes", 2, Path("/x"), steps=None)
    assert argv[:7] == ["train", "--method", "moco", "--data", "shapes", "--seed", "2"]
    assert "--steps" not in argv
    assert methods.train_argv("moco", "shapes", 2, Path("/x"), steps=5)[-2:] == ["--steps", "5"]


def test_the_command_line_explains_itself_and_rejects_unknown_methods(tmp_path, capsys):
    script = str(BENCHMARKS / "methods.py")
    shown = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "--quick" in shown.stdout and "--seeds" in shown.stdout
    with pytest.raises(SystemExit) as refused:
        methods.parse_args(["--out", str(tmp_path), "--methods", "nope"])
    assert refused.value.code == 2 and "unknown ['nope']" in capsys.readouterr().err
    quick = methods.parse_args(["--out", str(tmp_path), "--quick"])
    assert (quick.methods, quick.seeds, quick.steps) == (list(methods.QUICK_METHODS), [0], 20)
    full = methods.parse_args(["--out", str(tmp_path)])
    assert "supervised" in full.methods and "clip" in full.methods and full.seeds == [0, 1, 2]
    assert full.steps is None  # each recipe's own length


@pytest.mark.slow
def test_cpu_step_trains_the_default_shapes_step_in_fp32_and_bf16_alike():
    # about 5 s: builds the shapes data and takes 2 + 2 steps of the default shapes recipe
    cpu_step = load("cpu_step")
    config, dataset, view_fn, *_ = cpu_step.build("fp32", seed=0)
    views = cpu_step.make_views(config, dataset, view_fn, steps=2)
    fp32 = cpu_step.run_variant("fp32", views, warmup=1, seed=0)
    bf16 = cpu_step.run_variant("bf16", views, warmup=1, seed=0)
    assert fp32["images_per_s"] > 0 and len(fp32["losses"]) == 2
    assert fp32["losses"][0] == pytest.approx(bf16["losses"][0], abs=0.05)  # same weights, data
    assert fp32["losses"] != bf16["losses"]  # bf16 autocast really ran on the CPU


@pytest.mark.slow
def test_cpu_step_times_the_vit_step_with_fused_and_explicit_attention():
    # about 10 s: 2 steps of the dino-vit-shapes recipe, bf16 with either attention form
    cpu_step = load("cpu_step")
    from contrastkit.models import vit

    config, dataset, view_fn, *_ = cpu_step.build("fp32", 0, "dino", "vit")
    assert config.recipe == "dino-vit-shapes"
    views = cpu_step.make_views(config, dataset, view_fn, steps=2)
    explicit = cpu_step.run_variant("bf16", views, 1, 0, "dino", "vit")
    fused = cpu_step.run_variant("bf16+fused_attention", views, 1, 0, "dino", "vit")
    assert vit.EXPLICIT_ATTENTION_MAX_TOKENS == 256  # restored after the fused variant
    assert explicit["losses"][0] == pytest.approx(fused["losses"][0], abs=0.02)  # same function


def test_attention_diagnosis_crop_coverage_and_head_jaccards():
    attention = load("attention_masks")
    from contrastkit.transforms.recipes import CropSpec

    whole = torch.ones(3, 16, 16, dtype=torch.bool)  # an object that fills the scene
    spec = CropSpec(8, scale=(0.25, 0.25), ratio=(1.0, 1.0))  # always an 8x8 crop of 16x16
    cover = attention.crop_coverage(whole, spec, draws=4, seed=0)
    assert cover["crop_is_object"] == 1.0 and cover["object_inside"] == pytest.approx(0.25)
    corner = torch.zeros(3, 16, 16, dtype=torch.bool)
    corner[:, :2, :2] = True  # a 2x2 object in the corner: most 8x8 crops miss it
    missed = attention.crop_coverage(corner, spec, draws=50, seed=0)
    assert 0 < missed["half_or_more"] < 0.5 < missed["under_5pct"] < 1
    maps = torch.zeros(2, 2, 4, 4)
    maps[:, 0, :2, :2] = 1.0  # head 0 looks at the top-left quarter, head 1 everywhere
    maps[:, 1] = 1.0
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, :4, :4] = True
    heads = attention.head_jaccards(maps, masks)
    assert heads[0] == pytest.approx(0.75)  # 60% of 4 equal patches keeps 3 of the 4
    assert heads[1] < 0.75

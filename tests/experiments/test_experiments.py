"""``contrastkit experiment``: each experiment end to end at a tiny size, its measures, its errors.

The end-to-end tests run each experiment through the CLI with one seed and 2 steps per run (the
hidden ``--steps``), so they check the plumbing (run folders, rows, table, claims, figure), not
the claims themselves; the quick versions' numbers are in docs/experiments.md.
"""

import json
import math

import pytest
import torch
from torch import nn

from contrastkit.cli import main
from contrastkit.cli.experiment import NAMES
from contrastkit.experiments import EXPERIMENTS, batch_size, collapse
from contrastkit.experiments.common import Column, aggregate, compare, format_table
from contrastkit.experiments.projection_head import head_outputs
from contrastkit.experiments.temperature import hardest_negative_weight
from contrastkit.experiments.toy import CLAIMED

PNG = b"\x89PNG\r\n\x1a\n"
ROW_KEYS = {
    "batch-size": {"batch_size", "K", "log_K_plus_1", "final_loss", "knn", "linear_probe"},
    "temperature": {"temperature", "hardest_negative_weight", "alignment", "uniformity", "knn"},
    "projection-head": {"representation", "linear_probe"},
    "collapse": {"variant", "effective_rank", "knn"},
    "toy": {"quantity", "claimed", "classic", "recipe"},
}


def run_cli(capsys, name, out, *extra):
    code = main(["experiment", name, "--seeds", "1", "--steps", "2", "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == name
    for row in results["rows"]:
        assert ROW_KEYS[name] <= set(row), sorted(row)
    assert (out / results["figure"]).read_bytes().startswith(PNG)
    claims = [line for line in captured.out.splitlines() if line.startswith("claim: ")]
    assert len(claims) == len(results["claims"]) > 0
    assert all(": holds (" in c or ": does not hold (" in c for c in claims)
    assert " ± " in captured.out  # the table shows mean ± std
    return results


def test_every_documented_experiment_is_registered():
    assert sorted(EXPERIMENTS) == sorted(ROW_KEYS) == sorted(NAMES)  # the CLI's help lists them


@pytest.mark.parametrize("name", ["temperature", "projection-head"])
def test_sweep_experiments_write_rows_table_and_figure(name, tmp_path, capsys):
    # on toy: about 5 s each (digits' linear probes on 512-d features take 30 s)
    results = run_cli(capsys, name, tmp_path / name, "--quick", "--data", "toy")
    if name == "projection-head":  # h, the head's two hidden layers, z
        assert [r["representation"] for r in results["rows"]] == [
            "h",
            "head layer 1",
            "head layer 2",
            "z",
        ]
        assert [r["dim"] for r in results["rows"]] == [16, 8, 8, 4]
    else:
        assert [r["temperature"] for r in results["rows"]] == [0.05, 0.2, 1.0]
        assert all(0 < r["hardest_negative_weight"] <= 1 for r in results["rows"])


def test_batch_size_on_toy_ends_the_sweep_at_the_whole_split(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(batch_size, "QUICK_BATCHES", (16, 1024))  # toy has 100 points
    results = run_cli(capsys, "batch-size", tmp_path / "b", "--quick", "--data", "toy")
    rows = results["rows"]
    assert [r["batch_size"] for r in rows] == [16, 100]
    assert [r["K"] for r in rows] == [30, 198]  # 2N - 2
    assert rows[1]["log_K_plus_1"] == pytest.approx(math.log(199))
    assert (tmp_path / "b" / "runs" / "simclr-b100-seed0" / "config.json").exists()


def test_collapse_compares_each_ablation_with_its_full_method(tmp_path, capsys, monkeypatch):
    # DINO (multi-crop, its schedules) on digits, the ablations' options in the run's config;
    # 3 of the 11 variants to keep the test near 10 s
    kept = [v for v in collapse.VARIANTS if v[0] == "dino"]
    monkeypatch.setattr(collapse, "VARIANTS", kept)
    results = run_cli(capsys, "collapse", tmp_path / "c", "--quick")
    assert [r["variant"] for r in results["rows"]] == [v[1] for v in kept]
    assert [c["claim"] for c in results["claims"]] == [
        "DINO without centering collapses z",
        "DINO without sharpening collapses z",
    ]
    config = json.loads((tmp_path / "c/runs/dino-without-centering-seed0/config.json").read_text())
    assert config["method_options"]["center_momentum"] == 1.0
    assert config["view_options"] == {"n_local": 0}


def test_collapse_on_points_leaves_out_dino_and_keeps_every_other_ablation(tmp_path):
    from contrastkit.experiments.common import Plan

    chosen = collapse.variants(Plan(tmp_path, "toy"))
    assert [v[1] for v in chosen] == [v[1] for v in collapse.VARIANTS if v[0] != "dino"]
    assert ("byol", "BYOL without predictor", {"predictor": False}) in chosen


def test_toy_puts_the_posts_numbers_next_to_both_settings(tmp_path, capsys):
    results = run_cli(capsys, "toy", tmp_path / "t")
    assert [r["claimed"] for r in results["rows"]] == [v for _, v in CLAIMED.values()]
    runs = {r["setting"] for r in results["runs"]}
    assert runs == {"classic", "recipe"}
    classic = json.loads((tmp_path / "t/runs/simclr-classic-seed0/config.json").read_text())
    assert classic["backbone_options"] == {"hidden_dims": [8], "final_relu": True}
    assert (classic["batch_size"], classic["temperature"]) == (16, 0.5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["experiment", "bogus", "--out", "X"], "unknown experiment 'bogus'; expected one of"),
        (["experiment", "toy", "--seeds", "0", "--out", "X"], "--seeds must be an int >= 1"),
        (["experiment", "toy", "--data", "digits", "--out", "X"], "runs on --data toy only"),
        (["experiment", "toy", "--threads", "0", "--out", "X"], "--threads must be >= 1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert message in err


def hardest_weight_by_loops(z1, z2, tau):
    u = [row / row.norm() for row in torch.cat([z1, z2]).double()]
    n, best = len(z1), []
    for i in range(2 * n):
        negatives = [j for j in range(2 * n) if j not in (i, (i + n) % (2 * n))]
        exps = [math.exp(float(u[i] @ u[j]) / tau) for j in negatives]
        best.append(max(exps) / sum(exps))
    return sum(best) / len(best)


def test_hardest_negative_weight_matches_loops_and_known_values():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    for tau in (0.1, 1.0):
        expected = hardest_weight_by_loops(z1, z2, tau)
        assert hardest_negative_weight(z1, z2, tau) == pytest.approx(expected, rel=1e-9)
    same = torch.ones(4, 2)  # every negative equally similar: each gets 1/K, K = 6
    assert hardest_negative_weight(same, same, 0.1) == pytest.approx(1 / 6)
    # a lower temperature gives the hardest negative a larger share
    assert hardest_negative_weight(z1, z2, 0.05) > hardest_negative_weight(z1, z2, 1.0) > 1 / 8


def test_head_outputs_follow_the_sequential_without_hooks():
    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).train()
    h = torch.randn(6, 3)
    outputs = head_outputs(head, h)
    assert list(outputs) == ["h", "head layer 1", "z"]
    head.eval()
    assert torch.equal(outputs["z"], head(h))
    assert torch.equal(outputs["head layer 1"], head[:3](h))
    assert head_outputs(head.train(), h) and head.training  # the mode is restored


def test_aggregate_means_and_sample_std_over_seeds_and_keeps_counts():
    records = [
        {"seed": 0, "batch_size": 16, "K": 30, "knn": 0.5},
        {"seed": 1, "batch_size": 16, "K": 30, "knn": 0.7},
        {"seed": 0, "batch_size": 64, "K": 126, "knn": 0.9},
    ]
    rows = aggregate(records, ["batch_size"])
    assert rows[0] == {
        "batch_size": 16,
        "K": 30,
        "knn": pytest.approx(0.6),
        "knn_std": pytest.approx(math.sqrt(0.02)),
        "seeds": 2,
    }
    assert rows[1]["knn_std"] == 0.0 and rows[1]["seeds"] == 1
    table = format_table(rows, [Column("batch_size", "batch", "{:d}"), Column("knn", "kNN")])
    assert table.splitlines()[2].split() == ["16", "0.600", "±", "0.141"]


def test_compare_says_which_way_the_numbers_go_beyond_the_spread_over_seeds():
    small, big = ("B=16", {"knn": 0.5, "knn_std": 0.05}), ("B=64", {"knn": 0.7, "knn_std": 0.1})
    up = compare("bigger -> higher", "knn", small, big, higher=True)
    assert up.line() == (
        "claim: bigger -> higher: holds (0.500 ± 0.050 at B=16 -> 0.700 ± 0.100 at B=64)"
    )
    assert not compare("bigger -> lower", "knn", small, big, higher=False).holds
    noisy = ("B=64", {"knn": 0.52, "knn_std": 0.05})
    within = compare("bigger -> higher", "knn", small, noisy, higher=True)
    assert not within.holds and within.evidence.endswith("a change within the spread over seeds")
    one_seed = compare("x", "knn", ("a", {"knn": 0.5}), ("b", {"knn": 0.51}), higher=True)
    assert one_seed.holds and one_seed.evidence == "0.500 at a -> 0.510 at b"


def test_collapse_measures_and_claims():
    torch.manual_seed(0)
    spread = collapse.collapse_of(torch.randn(200, 8))
    assert spread["spread_z"] == pytest.approx(1.0, abs=0.1) and spread["effective_rank_z"] > 6
    one_way = collapse.collapse_of(torch.ones(50, 8) + 1e-6 * torch.randn(50, 8))
    assert one_way["spread_z"] < 1e-4 and one_way["effective_rank_z"] < 1.1

    def row(variant, rank, spread, method="m"):
        values = {"effective_rank_z": rank, "spread_z": spread, "knn": 0.9, "final_loss": 1.0}
        return {"method": method, "variant": variant, **values}

    claims = collapse.collapse_claims(
        [row("M", 30.0, 0.9), row("M without x", 29.0, 0.3), row("M without y", 31.0, 0.95)]
        + [row("D", 1.1, 0.01, "d"), row("D without z", 1.0, 0.005, "d")]
    )
    assert [c.holds for c in claims] == [True, False, False]
    assert claims[2].evidence.startswith("the full d collapsed too (spread of z 0.010")

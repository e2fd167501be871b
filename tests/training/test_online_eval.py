"""Online kNN evaluation during training, and progress off a terminal (issues #14, #18)."""

import json
import logging
import os
import subprocess
import sys

import pytest
import torch

from contrastkit.checkpoint import load_checkpoint
from contrastkit.cli import main
from contrastkit.methods import SimCLR
from contrastkit.training import online_eval
from contrastkit.training.online_eval import eval_steps
from contrastkit.training.runs import read_metrics
from contrastkit.training.trainer import TrainConfig, resume, train

pytestmark = pytest.mark.slow  # trains small models; each run takes a few seconds

# shapes with a small CNN (BatchNorm in h) and small cached subsets: a few seconds per run
SHAPES = {"data": "shapes", "batch_size": 16, "backbone_options": {"width": 8}}


@pytest.fixture
def small_subsets(monkeypatch):
    monkeypatch.setattr(online_eval, "MAX_TRAIN", 64)
    monkeypatch.setattr(online_eval, "MAX_TEST", 32)


def tiny(tmp_path, name="run", **overrides) -> TrainConfig:
    values = {
        "data": "toy",
        "steps": 12,
        "checkpoint_every": 4,
        "out": str(tmp_path / name),
        "progress": False,
        "eval": False,
    }
    return TrainConfig(**{**values, **overrides})


def weights(run_dir) -> dict:
    return load_checkpoint(run_dir / "checkpoint.pt")["model"]


def evals(run_dir) -> list[dict]:
    return [r for r in read_metrics(run_dir) if r["event"] == "eval"]


def test_eval_steps_default_every_n_and_off():
    assert eval_steps(None, 200) == [50, 100, 150, 200]
    assert eval_steps(None, 10) == [2, 5, 8, 10]
    assert eval_steps(None, 2) == [1, 2]
    assert eval_steps(5, 12) == [5, 10, 12]
    assert eval_steps(4, 12) == [4, 8, 12]
    assert eval_steps(50, 12) == [12]
    assert eval_steps(0, 12) == []


def test_eval_lines_at_the_expected_steps_summary_and_plot(tmp_path):
    run_dir = train(tiny(tmp_path, eval_every=5))
    records = read_metrics(run_dir)
    found = evals(run_dir)
    assert [r["step"] for r in found] == [5, 10, 12]
    assert all(set(r) == {"event", "step", "knn"} and 0 <= r["knn"] <= 1 for r in found)
    for record in found:  # each eval line follows its step's line (and that step's epoch line)
        before = [r for r in records[: records.index(record)] if r["event"] == "step"][-1]
        assert before["step"] == record["step"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["online_knn"] == found[-1]["knn"]
    assert (run_dir / "knn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_eval_turns_the_online_knn_off_unless_eval_every_asks(tmp_path):
    off = train(tiny(tmp_path, "no-eval", steps=4))  # eval False, eval_every unset
    assert evals(off) == []
    asked = train(tiny(tmp_path, "asked", steps=4, eval_every=2))
    assert [r["step"] for r in evals(asked)] == [2, 4]


def test_eval_every_zero_is_off_and_unlabelled_data_is_skipped(tmp_path, monkeypatch, caplog):
    run_dir = train(tiny(tmp_path, "off", eval_every=0))
    assert evals(run_dir) == [] and not (run_dir / "knn.png").exists()

    def unlabelled(config):
        points = torch.zeros(8, 2)
        dataset = [(x, -1) for x in points]
        return dataset, dataset

    monkeypatch.setattr(online_eval, "eval_splits", unlabelled)
    with caplog.at_level(logging.INFO, logger="contrastkit.training.online_eval"):
        run_dir = train(tiny(tmp_path, "unlabelled", eval_every=2))
    assert evals(run_dir) == []
    assert "online kNN evaluation skipped" in caplog.text


def test_evaluation_changes_neither_weights_nor_batch_norm(tmp_path, small_subsets):
    """The RNG is restored and h is embedded in eval mode: eval on gives eval off's weights."""
    off = train(tiny(tmp_path, "off", steps=6, eval_every=0, **SHAPES))
    on = train(tiny(tmp_path, "on", steps=6, eval_every=2, **SHAPES))
    assert [r["step"] for r in evals(on)] == [2, 4, 6]
    a, b = weights(off), weights(on)
    assert any("running_mean" in k for k in a)  # the CNN's BatchNorm statistics are compared
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [r for r in read_metrics(on) if r["event"] != "eval"]
    assert steps == read_metrics(off)


def test_resume_with_eval_on_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    reference = train(tiny(tmp_path, "reference", eval_every=3))
    original = SimCLR.after_step

    def crash_at_step_ten(self, step, total, outputs):
        original(self, step, total, outputs)
        if step == 9:  # the 10th step; the last checkpoint holds step 8, the eval of step 9 is lost
            raise KeyboardInterrupt

    monkeypatch.setattr(SimCLR, "after_step", crash_at_step_ten)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path, "crashed", eval_every=3))
    crashed = tmp_path / "crashed"
    assert [r["step"] for r in evals(crashed)] == [3, 6, 9]
    monkeypatch.setattr(SimCLR, "after_step", original)
    resume(crashed)
    assert [r["step"] for r in evals(crashed)] == [3, 6, 9, 12]
    a, b = weights(crashed), weights(reference)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (crashed / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()


def test_off_a_terminal_progress_lines_and_evaluation_stages(tmp_path, capsys):
    train(tiny(tmp_path, "shown", steps=40, eval_every=20, eval=True, progress=True))
    err = capsys.readouterr().err.splitlines()
    steps = [line for line in err if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == [f"{k}/40" for k in (1, *range(2, 41, 2))]
    assert "loss " in steps[-1] and "lr " in steps[-1] and "samples/s" in steps[-1]
    assert "kNN" not in steps[0] and "kNN " in steps[-1]  # the last evaluation's accuracy
    stages = [line for line in err if line.startswith("evaluation: ")]
    assert len(stages) >= 5 and stages[-1].startswith("evaluation: done")


@pytest.fixture
def root_level():
    level = logging.getLogger().level  # --quiet lowers the root logger's level
    yield
    logging.getLogger().setLevel(level)


def test_cli_quiet_prints_no_progress_and_no_evaluation_stages(tmp_path, capsys, root_level):
    argv = ["train", "--data", "toy", "--steps", "20", "--out", str(tmp_path / "r")]
    assert main([*argv, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines()[0] == f"run folder: {tmp_path / 'r'}"
    assert "kNN accuracy (k=20)" in captured.out  # the results, evaluated


def test_a_run_to_a_pipe_prints_its_folder_first_then_progress(tmp_path):
    """A real process whose stdout and stderr are one pipe (5-10 s: the process imports torch)."""
    run = tmp_path / "piped"
    command = [sys.executable, "-m", "contrastkit", "train", "--data", "toy", "--steps", "20"]
    result = subprocess.run(
        [*command, "--no-eval", "--out", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},  # buffered stdout
    )
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    folder = lines.index(f"run folder: {run}")
    progress = [i for i, line in enumerate(lines) if line.startswith("step ")]
    assert len(progress) == 20 and folder < progress[0]  # 20 steps: a line for each (5%)
    assert lines[progress[-1]].startswith("step 20/20 (100%)  loss ")
    assert result.stdout.count("run folder:") == 1

"""The trainer on the toy data: run folder, determinism, resume, NaN guard, hooks."""

import json
import logging
import math

import pytest
import torch

from contrastkit.checkpoint import load_checkpoint
from contrastkit.methods import SimCLR
from contrastkit.training.runs import load_run, read_metrics
from contrastkit.training.trainer import TrainConfig, TrainingDiverged, resume, train

pytestmark = pytest.mark.slow


def tiny(tmp_path, name="run", **overrides) -> TrainConfig:
    values = {
        "data": "toy",
        "preset": "paper",  # the classic toy settings: these tests are about the trainer
        "steps": 12,
        "checkpoint_every": 4,
        "out": str(tmp_path / name),
        "progress": False,
        "eval": False,
    }
    return TrainConfig(**{**values, **overrides})


def weights(run_dir) -> dict:
    return load_checkpoint(run_dir / "checkpoint.pt")["model"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_run_folder_metrics_summary_and_reload(tmp_path):
    run_dir = train(tiny(tmp_path, eval=True))
    names = {p.name for p in run_dir.iterdir()}
    expected = {"config.json", "metrics.jsonl", "checkpoint.pt", "summary.json", "loss.png"}
    assert expected | {"embedding_map.png", "similarity_hist.png"} <= names
    records = read_metrics(run_dir)
    steps = [r["step"] for r in records if r["event"] == "step"]
    assert steps == list(range(1, 13))  # toy logs every step
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [(r["epoch"], r["step"]) for r in epochs] == [(1, 6), (2, 12)]
    first = [r for r in records if r["event"] == "step"][:6]
    assert epochs[0]["epoch_loss"] == pytest.approx(sum(r["loss"] for r in first) / 6)
    assert {"lr", "embedding_std", "embedding_std_ref", "embedding_rank"} <= set(records[0])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["first_loss"] == records[0]["loss"]
    assert summary["info_nce_bound"] == pytest.approx(math.log(31))
    for encoder in ("raw", "random_init", "trained"):
        assert 0 <= summary["eval"][encoder]["knn"] <= 1
        assert summary["eval"][encoder]["separation_gap"] is not None
    assert summary["eval"]["trained"]["feature_dim"] == 8
    method, config = load_run(run_dir)
    assert isinstance(method, SimCLR) and not method.training and config.steps == 12
    assert same_weights(method.state_dict(), weights(run_dir))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = weights(train(tiny(tmp_path, "a")))
    b = weights(train(tiny(tmp_path, "b")))
    c = weights(train(tiny(tmp_path, "c", seed=1)))
    assert same_weights(a, b)
    assert not same_weights(a, c)


# shapes: images whose views the batched pipeline makes from per-sample draws
SHAPES = {"data": "shapes", "batch_size": 16, "backbone_options": {"width": 8}, "log_every": 1}


@pytest.mark.parametrize("data", [{}, SHAPES], ids=["toy", "shapes-batched"])
def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, monkeypatch, data):
    reference = train(tiny(tmp_path, "reference", **data))
    assert reference.joinpath("config.json").read_text().count('"batched"') == bool(data)
    original = SimCLR.after_step

    def crash_at_step_ten(self, step, total, outputs):
        original(self, step, total, outputs)
        if step == 9:  # the 10th step; the last checkpoint holds step 8
            raise KeyboardInterrupt

    monkeypatch.setattr(SimCLR, "after_step", crash_at_step_ten)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path, "crashed", **data))
    crashed = tmp_path / "crashed"
    assert load_checkpoint(crashed / "checkpoint.pt")["step"] == 8
    assert max(r["step"] for r in read_metrics(crashed)) == 9
    monkeypatch.setattr(SimCLR, "after_step", original)
    killed_write = crashed / ".checkpoint.pt.k9x2.tmp"  # what a kill -9 mid-save leaves
    killed_write.write_bytes(b"half a checkpoint")
    resume(crashed)
    assert not killed_write.exists()
    assert same_weights(weights(crashed), weights(reference))
    assert (crashed / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = SimCLR.training_step
    calls = []

    def nan_at_step_seven(self, views):
        out = original(self, views)
        if torch.is_grad_enabled():  # not the no-grad preflight step in prepare
            calls.append(1)
        if len(calls) == 7:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(SimCLR, "training_step", nan_at_step_seven)
    with pytest.raises(TrainingDiverged) as info:
        train(tiny(tmp_path))
    message = str(info.value)
    assert "step 7" in message and "checkpoint.pt (step 4)" in message
    assert info.value.step == 7 and info.value.checkpoint_step == 4
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert max(r["step"] for r in read_metrics(tmp_path / "run")) == 6


def test_hooks_are_called_in_order(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        SimCLR, "setup", lambda self, total, per_epoch: calls.append(("setup", total, per_epoch))
    )
    monkeypatch.setattr(
        SimCLR, "before_optimizer_step", lambda self, step: calls.append(("before", step))
    )
    monkeypatch.setattr(
        SimCLR,
        "after_step",
        lambda self, step, total, outputs: calls.append(("after", step, total)),
    )
    train(tiny(tmp_path, steps=3))
    assert calls == [
        ("setup", 3, 6),
        ("before", 0),
        ("after", 0, 3),
        ("before", 1),
        ("after", 1, 3),
        ("before", 2),
        ("after", 2, 3),
    ]


def test_after_step_gets_the_step_outputs_and_state_entries_are_not_logged(tmp_path, monkeypatch):
    original = SimCLR.training_step
    seen = []

    def with_state(self, views):
        out = original(self, views)
        return {**out, "state/keys": out["embedding"], "state/scalar": out["loss"].detach()}

    def after_step(self, step, total, outputs):
        seen.append((step, sorted(outputs), float(outputs["loss"].detach())))

    monkeypatch.setattr(SimCLR, "training_step", with_state)
    monkeypatch.setattr(SimCLR, "after_step", after_step)
    records = read_metrics(train(tiny(tmp_path, steps=3)))
    steps = [r for r in records if r["event"] == "step"]
    assert [s for s, _, _ in seen] == [0, 1, 2]
    assert {"loss", "embedding", "state/keys", "state/scalar"} <= set(seen[0][1])
    assert [loss for _, _, loss in seen] == [r["loss"] for r in steps]  # before any averaging
    assert not any(key.startswith("state/") for r in records for key in r)


def test_a_method_without_negatives_has_no_info_nce_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(SimCLR, "num_negatives", lambda self, batch_size: None)
    run_dir = train(tiny(tmp_path, steps=2))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "info_nce_bound" not in summary and "num_negatives" not in summary
    assert summary["first_loss"] is not None


@pytest.mark.parametrize(
    "overrides",
    [
        {"optimizer": "sgd", "lr": 0.05, "clip_grad": 1.0},
        {"optimizer": "lars", "lr": 0.5, "warmup_steps": 2},
        {"amp": "bf16"},
        {"chunk_size": 4},
    ],
)
def test_optimizers_clipping_amp_and_gradient_caching_run(tmp_path, overrides):
    run_dir = train(tiny(tmp_path, steps=4, **overrides))
    losses = [r["loss"] for r in read_metrics(run_dir) if r["event"] == "step"]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)


def test_collapse_monitor_warns_once_during_training(tmp_path, monkeypatch, caplog):
    original = SimCLR.training_step

    def collapsed(self, views):
        out = original(self, views)
        return {**out, "embedding": torch.ones_like(out["embedding"])}

    with caplog.at_level(logging.WARNING, logger="contrastkit.training.monitor"):
        train(tiny(tmp_path, "healthy", steps=3))
        assert not caplog.records
        monkeypatch.setattr(SimCLR, "training_step", collapsed)
        run_dir = train(tiny(tmp_path, "collapsed", steps=3))
    assert len(caplog.records) == 1 and "collapsed at step 1" in caplog.records[0].getMessage()
    assert read_metrics(run_dir)[0]["embedding_std"] == 0.0


def test_bad_settings_fail_before_the_folder_exists(tmp_path):
    with pytest.raises(ValueError, match="larger than the dataset"):
        train(tiny(tmp_path, batch_size=101))
    with pytest.raises(ValueError, match="unknown backbone"):
        train(tiny(tmp_path, backbone="resnet9"))
    assert not (tmp_path / "run").exists()

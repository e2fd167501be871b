"""--resume with a changed learning rate, a run killed before its first checkpoint, a full disk.

Each run is SimCLR on the 100 toy points (batch 16), a few steps: about a second.
"""

import errno
import json

import pytest
import torch

from contrastkit import checkpoint as checkpoint_module
from contrastkit.methods import SimCLR
from contrastkit.training import runs
from contrastkit.training.config import TrainConfig
from contrastkit.training.preflight import preflight
from contrastkit.training.runlog import RunLog
from contrastkit.training.trainer import prepare, resume, train

TIMING = {"train_seconds", "samples_per_s", "eval_seconds"}


def _config(out, **values) -> TrainConfig:
    base = dict(data="toy", steps=12, checkpoint_every=5, log_every=1, eval=False, progress=False)
    return TrainConfig(out=str(out), **{**base, **values})


def _stop_after(monkeypatch, last_step: int) -> None:
    """Make training stop (KeyboardInterrupt) once step ``last_step`` is logged."""
    record = RunLog.record

    def stopping(self, state, out, lr):
        loss = record(self, state, out, lr)
        if state.step == last_step:
            raise KeyboardInterrupt
        return loss

    monkeypatch.setattr(RunLog, "record", stopping)


def _steps(run_dir) -> dict[int, dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r for r in map(json.loads, lines) if r["event"] == "step"}


def test_resume_with_a_new_lr_scales_the_schedule_and_is_recorded(tmp_path, monkeypatch):
    reference = train(_config(tmp_path / "reference", lr=1e-2))
    with monkeypatch.context() as patch:
        _stop_after(patch, 7)
        with pytest.raises(KeyboardInterrupt):
            train(_config(tmp_path / "run", lr=1e-2))
    run = resume(tmp_path / "run", lr=1e-3)  # the checkpoint holds step 5
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == 1e-3
    assert config["resumed_changes"] == [{"step": 5, "lr": [1e-2, 1e-3]}]
    before, after = _steps(reference), _steps(run)
    assert [after[s]["lr"] for s in range(1, 6)] == [before[s]["lr"] for s in range(1, 6)]
    for step in range(6, 13):  # the same schedule, a tenth of the height
        assert after[step]["lr"] == pytest.approx(before[step]["lr"] / 10, rel=1e-9)


def test_resume_with_the_same_settings_records_nothing(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _stop_after(patch, 7)
        with pytest.raises(KeyboardInterrupt):
            train(_config(tmp_path / "run"))
    run = resume(tmp_path / "run", lr=_config(tmp_path).lr)  # None: "the saved one"
    assert json.loads((run / "config.json").read_text())["resumed_changes"] == []


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _stop_after(patch, 3)  # the first checkpoint is at step 5
        with pytest.raises(KeyboardInterrupt):
            train(_config(tmp_path / "killed"))
    assert not (tmp_path / "killed" / "checkpoint.pt").exists()
    resumed = resume(tmp_path / "killed")
    reference = train(_config(tmp_path / "reference"))
    clean = [{k: v for k, v in r.items() if k not in TIMING} for r in _steps(resumed).values()]
    same = [{k: v for k, v in r.items() if k not in TIMING} for r in _steps(reference).values()]
    assert clean == same
    weights = torch.load(resumed / "checkpoint.pt", weights_only=True)["model"]
    expected = torch.load(reference / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(weights[k], expected[k]) for k in expected)


def test_a_full_disk_at_the_start_leaves_no_folder_and_names_the_file(tmp_path, monkeypatch):
    def full(handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(
        runs, "write_json", lambda path, value: checkpoint_module.atomic_write(path, full, "w")
    )
    out = tmp_path / "new" / "nested" / "run"
    with pytest.raises(OSError, match="cannot write .*run/config.json: No space left") as err:
        train(_config(out))
    assert err.value.errno == errno.ENOSPC and ".tmp" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # the folders it created are gone again


def test_a_failed_checkpoint_write_names_the_checkpoint_and_leaves_no_temp_file(
    tmp_path, monkeypatch
):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.os, "fsync", no_space)
    target = tmp_path / "checkpoint.pt"
    with pytest.raises(OSError, match=f"cannot write {target}: No space left on device"):
        checkpoint_module.save_checkpoint(target, {"step": 1})
    assert list(tmp_path.iterdir()) == []


def test_views_that_do_not_fit_the_method_are_refused_before_any_folder(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"got 1.*views.num_views = 2"):
        train(_config(out, view_options={"num_views": 1}))
    assert not out.exists()


def test_the_preflight_step_changes_no_buffer_no_weight_and_no_rng(tmp_path):
    config = _config(tmp_path / "run", method="simclr", data="digits", batch_size=8)
    config, dataset, method, view_fn = prepare(config)
    assert isinstance(method, SimCLR)
    assert any("running_mean" in k for k in method.state_dict())  # BatchNorm statistics
    before = {k: v.clone() for k, v in method.state_dict().items()}
    rng = torch.get_rng_state()
    preflight(method, dataset, view_fn, config.seed)
    assert torch.equal(torch.get_rng_state(), rng)
    after = method.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

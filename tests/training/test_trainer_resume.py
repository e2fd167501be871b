"""Resume after a real SIGKILL: the resumed run ends exactly where an uninterrupted one does."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from contrastkit.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

# toy: 100 points, batch 16 -> 6 steps per epoch; checkpoints every 11 steps are mid-epoch up
# to step 66, so a kill anywhere between steps 12 and 66 resumes from the middle of an epoch.
ARGS = ["--data", "toy", "--steps", "150", "--checkpoint-every", "11", "--quiet"]
TIMING = {"train_seconds", "samples_per_s", "eval_seconds"}


def _train(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "contrastkit", "train", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _last_step(metrics) -> int:
    if not metrics.exists():
        return 0
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()[:-1]]
    return max(steps, default=0)


def _untimed(summary: dict) -> dict:
    summary = {k: v for k, v in summary.items() if k not in TIMING}
    summary["eval"] = {k: v for k, v in summary["eval"].items() if k not in TIMING}
    return summary


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    proc = _train(*ARGS, "--out", str(killed))
    metrics = killed / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while _last_step(metrics) < 12:
        assert proc.poll() is None, f"training ended before the kill: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "training did not reach step 12 in time"
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = load_checkpoint(killed / "checkpoint.pt")["step"]
    written = _last_step(metrics)
    assert 11 <= saved < 150 and saved % 6 != 0, f"checkpoint at step {saved} is not mid-epoch"
    assert not (killed / "summary.json").exists()

    resumed = _train("--resume", str(killed), "--quiet")
    uninterrupted = _train(*ARGS, "--out", str(reference))
    for p in (resumed, uninterrupted):
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    assert written >= saved  # lines past the checkpoint existed and were replaced

    a = load_checkpoint(killed / "checkpoint.pt")
    b = load_checkpoint(reference / "checkpoint.pt")
    assert a["step"] == b["step"] == 150
    for key, value in b["model"].items():
        assert torch.allclose(a["model"][key].double(), value.double(), rtol=0, atol=1e-6), key
    assert (killed / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    summary_a = json.loads((killed / "summary.json").read_text())
    summary_b = json.loads((reference / "summary.json").read_text())
    assert _untimed(summary_a) == _untimed(summary_b)

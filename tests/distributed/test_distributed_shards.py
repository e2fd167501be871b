"""``--data shards:DIR`` under torchrun: each process reads its own shards; kill -9 resumes.

The shards: 48 photos of 80x60 made from scikit-image's pictures, 40 training images in 7
shards of 6 (the last of 4). With 2 processes and a global batch of 8, each process takes 4
images per step from its own 3 or 4 shards: an epoch is the 3 smallest shards' 16 images // 4 =
4 steps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from torchrun_launch import HERE, run_command, torchrun_command

from contrastkit.checkpoint import load_checkpoint
from contrastkit.data.photo_folder import make_photo_folder
from contrastkit.data.shards import write_shards

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

TRAIN = [
    *("train", "--data", "{shards}", "--image-size", "32", "--backbone", "cnn"),
    *("--batch-size", "8", "--optimizer", "sgd", "--no-eval", "--eval-every", "0", "--quiet"),
    *("--num-workers", "2"),
]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    make_photo_folder(root / "photos", 48, classes=4, size=(80, 60))
    write_shards(str(root / "photos"), root / "shards", shard_size=6)
    return root / "shards"


def _args(shards: Path, *extra: str) -> list[str]:
    return [a.replace("{shards}", f"shards:{shards}") for a in TRAIN] + list(extra)


def _reads(out: Path, rank: int) -> list[tuple[str, str]]:
    lines = []
    for path in out.glob(f"reads-rank{rank}-*.txt"):
        lines += [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]
    return lines


def test_the_two_processes_read_disjoint_shards_and_images(shards, tmp_path):
    worker = str(HERE / "worker_shards.py")
    args = _args(shards, "--steps", "3", "--out", str(tmp_path / "run"))
    result = run_command(torchrun_command(worker, str(tmp_path), *args), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    reads = [_reads(tmp_path, rank) for rank in (0, 1)]
    assert all(len(r) >= 3 * 4 for r in reads)  # 3 steps of 4 images each, and the preflight
    files = [{shard for shard, _ in r} for r in reads]
    images = [set(r) for r in reads]
    assert files[0] and files[1] and not files[0] & files[1]
    assert not images[0] & images[1]
    assert all(f.startswith("train-") for f in files[0] | files[1])


def _metrics_step(metrics: Path) -> int:
    if not metrics.exists():
        return 0
    lines = metrics.read_text().splitlines()[:-1]  # the last may be half-written
    return max((json.loads(line)["step"] for line in lines if '"step"' in line), default=0)


def test_resume_after_kill_9_under_torchrun_is_exact(shards, tmp_path):
    common = _args(shards, "--steps", "14", "--checkpoint-every", "5", "--log-every", "1")
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = torchrun_command("-m", "contrastkit", *common, "--out", str(killed))
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while _metrics_step(killed / "metrics.jsonl") < 6:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "training did not reach step 6 in time"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # the launcher, both processes and their workers
    process.wait()
    saved = load_checkpoint(killed / "checkpoint.pt")["step"]
    assert saved in (5, 10)  # mid-epoch: epochs are 4 steps
    assert not (killed / "summary.json").exists()

    resumed = run_command(
        torchrun_command("-m", "contrastkit", "train", "--resume", str(killed), "--quiet"),
        tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    fresh = run_command(
        torchrun_command("-m", "contrastkit", *common, "--out", str(reference)), tmp_path
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    a, b = load_checkpoint(killed / "checkpoint.pt"), load_checkpoint(reference / "checkpoint.pt")
    assert a["step"] == b["step"] == 14
    for key, value in b["model"].items():
        assert torch.equal(a["model"][key], value), key
    assert (killed / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()

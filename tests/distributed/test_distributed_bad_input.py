"""Bad input under 2 real processes: a clear ValueError on every process, and no hang.

The cases run in worker_bad_input.py at the start of the shared launch (``train_launch``);
the command-line cases (odd global batch, nccl) are in test_distributed_training.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
W = 2


@pytest.fixture(scope="module")
def messages(train_launch: dict) -> list[dict]:
    return [rank["messages"] for rank in train_launch["ranks"]]


EXPECTED = {
    "nt_xent_width": r"^gathered tensor: shapes differ across processes \(rank 0 \(8, 8\), rank 1 "
    r"\(8, 6\)\); every process must pass the same shape \(same local batch and embedding width",
    "nt_xent_rows": r"^gathered tensor: shapes differ across processes \(rank 0 \(8, 8\), rank 1 "
    r"\(6, 8\)\)",
    "clip_width": r"^gathered tensor: shapes differ across processes \(rank 0 \(4, 8\), rank 1 "
    r"\(4, 6\)\)",
    "barlow_width": r"^all-reduced tensor: shapes differ across processes \(rank 0 \(8,\), rank 1 "
    r"\(6,\)\)",
    "global_batch": r"batch_size 15 is the global batch and must be divisible by the world size "
    r"2; use e.g. 14 or 16",
    "backend_name": r"backend must be one of auto, gloo, nccl, got 'mpi'",
}


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_every_process_gets_the_same_clear_error(messages: list[dict], case: str) -> None:
    for r in range(W):
        assert re.search(EXPECTED[case], messages[r][case]), (r, messages[r][case])
    assert messages[0][case] == messages[1][case]


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has GPUs")
def test_nccl_without_gpus_fails_on_every_process(messages: list[dict]) -> None:
    for r in range(W):
        assert "'nccl' needs CUDA GPUs" in messages[r]["nccl_without_gpus"]


@pytest.mark.slow
@pytest.mark.distributed
def test_processes_stay_in_step_after_the_errors(messages: list[dict]) -> None:
    assert [m["after"] for m in messages] == [[0.0, 1.0], [0.0, 1.0]]


def _error_lines(torchrun, tmp_path: Path, rank: int, signal: str, timeout: int) -> tuple:
    """Train on 2 processes whose ``rank`` sends itself ``signal`` after step 2; return the
    launch's stderr and its "contrastkit train: error" lines."""
    out = tmp_path / "run"
    argv = ["train", "--data", "toy", "--steps", "50", "--no-eval", "--quiet", "--out", str(out)]
    script = str(HERE / "worker_signal.py")
    result = torchrun(script, str(rank), signal, *argv, "--dist-timeout", str(timeout))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "contrastkit train: error" in line]
    assert errors, result.stderr[-4000:]
    return result.stderr, errors


@pytest.mark.slow
@pytest.mark.distributed
def test_a_stopped_peer_ends_the_run_with_one_timeout_error(torchrun, tmp_path: Path) -> None:
    _, errors = _error_lines(torchrun, tmp_path, rank=1, signal="SIGSTOP", timeout=3)
    assert "waited 3 s (--dist-timeout) for the other processes" in errors[0]


@pytest.mark.slow
@pytest.mark.distributed
def test_a_dead_peer_ends_the_survivor_with_one_clear_line(torchrun, tmp_path: Path) -> None:
    stderr, errors = _error_lines(torchrun, tmp_path, rank=0, signal="SIGKILL", timeout=60)
    assert "process 1 of 2 lost another process" in errors[0], errors
    assert "Connection closed by peer" not in stderr.replace(errors[0], "")

"""Fixtures that launch real processes: ``torchrun`` and the shared ``train_launch``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# the tests and the workers share helper modules of this folder, under any --import-mode
sys.path.insert(0, str(Path(__file__).parent))

from torchrun_launch import LAUNCH_TIMEOUT_S, run_command, torchrun_command  # noqa: E402


@pytest.fixture
def torchrun(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Return ``run(*args, nproc=2, timeout=...)`` launching torchrun in ``tmp_path``."""

    def run(
        *args: str, nproc: int = 2, timeout: float = LAUNCH_TIMEOUT_S, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        return run_command(torchrun_command(*args, nproc=nproc), tmp_path, timeout, env)

    return run


@pytest.fixture(scope="session")
def train_launch(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run worker_train.py once on 2 processes: bad-input checks, then the training variants.

    Returns:
        ``{"out": folder of the runs, "ranks": each rank's JSON, "stderr": the launch's}``.
    """
    out = tmp_path_factory.mktemp("train_launch")
    command = torchrun_command(str(Path(__file__).parent / "worker_train.py"), str(out))
    result = run_command(command, out)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return {"out": out, "ranks": ranks, "stderr": result.stderr}

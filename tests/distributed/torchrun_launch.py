"""Launch real multi-process runs with torchrun, with free ports and a timeout (test helpers).

Each launch starts ``python -m torch.distributed.run`` in its own session so that, when it
overruns its timeout, the launcher and every worker are killed and the test fails instead of
hanging CI. Workers use gloo on CPU.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
LAUNCH_TIMEOUT_S = 120


def free_port() -> int:
    """Return a TCP port that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_command(
    command: list[str], cwd: Path, timeout: float = LAUNCH_TIMEOUT_S, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``command``; on timeout kill its whole process group and fail the test."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{command} hung for {timeout} s\nstdout:\n{stdout}\nstderr:\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def torchrun_command(*args: str, nproc: int = 2) -> list[str]:
    """Return the torchrun command line for ``nproc`` local processes on a free port."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        *args,
    ]

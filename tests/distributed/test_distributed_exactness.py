"""Two real processes compute the same losses and gradients as one process with the whole batch.

The gradient convention (contrastkit.distributed): with global loss L = mean over processes of
the local losses L_r, each process's gradient with respect to its own rows is exactly
W * dL/d(rows) (gradients through gather / all-reduce are summed over processes), and parameter
gradients averaged over processes (what DDP does) are exactly dL/dtheta.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torchrun_launch import run_command, torchrun_command

HERE = Path(__file__).parent
W = 2

spec = importlib.util.spec_from_file_location("worker_losses", HERE / "worker_losses.py")
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)

PARAMETERS = {"log_scale", "queue", "weight", "bias"}  # not split by rows: averaged over processes
STATES = {"running_mean", "running_var"}  # identical on every process
TOLERANCE = {str(torch.float32): 1e-5, str(torch.float64): 1e-12}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("losses")
    result = run_command(torchrun_command(str(HERE / "worker_losses.py"), str(out)), out)
    assert result.returncode == 0, result.stderr[-4000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(W)]


CASES = [
    "nt_xent_dense",
    "nt_xent_tiled",
    "clip_dense",
    "clip_tiled",
    "moco_v3_dense",
    "moco_v3_tiled",
    "moco_queue_dense",
    "moco_queue_tiled",
    "barlow_twins",
    "vicreg",
    "dino",
    "dino_center",
    "sync_batch_norm",
]


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("case", CASES)
def test_two_processes_equal_one_process_with_the_global_batch(
    ranks: list[dict], case: str, dtype: str
) -> None:
    rtol = TOLERANCE[dtype]
    inputs = worker.global_inputs(getattr(torch, dtype.removeprefix("torch.")))
    full = worker.compute(inputs, 0, worker.N)[case]
    local = [ranks[r][dtype][case] for r in range(W)]
    n = worker.N // W

    def close(actual, expected, what):
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * 1e-2, msg=what)

    if case == "dino_center":  # every process holds the global batch's center
        for r in range(W):
            close(local[r]["loss"], full["loss"], f"rank {r} center")
        return
    # the global loss is the mean of the local losses
    close(torch.stack([p["loss"] for p in local]).mean(), full["loss"], "mean loss")
    for name, expected in full.items():
        if name == "loss" or expected is None:  # (DINO's teacher gets no gradient)
            assert name == "loss" or all(p[name] is None for p in local)
            continue
        if name in PARAMETERS:  # DDP averages parameter gradients over processes
            close(torch.stack([p[name] for p in local]).mean(0), expected, name)
        elif name in STATES:
            for r in range(W):
                close(local[r][name], expected, f"rank {r} {name}")
        else:  # each process's rows get W x the full-batch gradient of the mean loss
            dim = 1 if case == "dino" else 0
            for r in range(W):
                rows = expected.narrow(dim, r * n, n)
                close(local[r][name], W * rows, f"rank {r} d loss / d {name}")


@pytest.mark.slow
@pytest.mark.distributed
def test_gradient_averaging_metrics_and_plain_gather(ranks: list[dict]) -> None:
    for r in range(W):
        helpers = ranks[r]["helpers"]
        assert torch.equal(helpers["grad_a"], torch.full((2,), 1.5))  # (1 + 2) / 2
        assert torch.equal(helpers["grad_b"], torch.full((1,), 2.0))  # (absent + 4) / 2
        assert torch.equal(helpers["metrics"], torch.tensor([5.0, 0.5]))
        assert torch.equal(helpers["gathered"], torch.tensor([[0, 0], [1, 1]]))

"""contrastkit.distributed on one process: no-ops, backend checks, environment checks.

The multi-process behaviour (exact gradients, training, errors on every process) is tested with
real processes in tests/distributed/.
"""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from contrastkit import distributed
from contrastkit.training import ddp


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_single_process_queries() -> None:
    assert not distributed.is_distributed()
    assert distributed.world_size() == 1
    assert distributed.rank() == 0
    assert distributed.local_rank() == 0
    assert distributed.is_main_process()
    assert ddp.device_for("cpu") == torch.device("cpu")


def test_main_process_follows_the_torchrun_rank_without_a_group(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert distributed.is_main_process()
    clean_env.setenv("RANK", "1")  # e.g. rank 1 after its process group ended
    assert not distributed.is_main_process()
    assert distributed.rank() == 0  # library code never sees a rank without a group


def test_collectives_are_identities_on_one_process() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    assert distributed.gather(x) is x
    assert distributed.all_reduce_sum(x) is x
    assert distributed.gather_nograd(x) is x
    y = torch.tensor([1.0, 2.0])
    assert torch.equal(distributed.all_reduce_mean_(y), torch.tensor([1.0, 2.0]))
    assert distributed.mean_over_processes({"loss": 1.5, "lr": 0.1}) == {"loss": 1.5, "lr": 0.1}
    assert distributed.broadcast_object("runs/a") == "runs/a"
    distributed.barrier()


def test_average_gradients_is_a_no_op_on_one_process() -> None:
    layer = nn.Linear(3, 2)
    layer(torch.randn(5, 3)).sum().backward()
    before = layer.weight.grad.clone()
    ddp.average_gradients_(layer.parameters())
    assert torch.equal(layer.weight.grad, before)


def test_data_parallel_is_the_plain_training_step_on_one_process() -> None:
    class Stepper(nn.Module):
        def training_step(self, views):
            return {"loss": views[0].sum()}

    method = Stepper()
    step = ddp.data_parallel(method)
    assert step == method.training_step
    assert step([torch.ones(2)])["loss"].item() == 2.0


def test_batch_split_on_one_process() -> None:
    assert ddp.local_batch_size(7) == 7


def test_resolve_backend() -> None:
    expected = "nccl" if torch.cuda.is_available() else "gloo"
    assert ddp.resolve_backend("auto") == expected
    assert ddp.resolve_backend("gloo") == "gloo"
    with pytest.raises(ValueError, match=r"backend must be one of auto, gloo, nccl, got 'mpi'"):
        ddp.resolve_backend("mpi")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without GPUs"
)
def test_nccl_without_gpus_names_the_cause() -> None:
    with pytest.raises(ValueError, match=r"'nccl' needs CUDA GPUs.*use --backend gloo"):
        ddp.resolve_backend("nccl")


def test_init_from_env_without_torchrun_starts_nothing(clean_env: pytest.MonkeyPatch) -> None:
    assert ddp.init_from_env() is False
    clean_env.setenv("WORLD_SIZE", "1")
    assert ddp.init_from_env("gloo") is False
    with ddp.process_group() as running:
        assert running is False
    assert not torch.distributed.is_initialized()


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without GPUs"
)
def test_init_from_env_checks_the_backend_first(clean_env: pytest.MonkeyPatch) -> None:
    # a plain launch asking for nccl fails too, so the mistake is seen before scaling out
    with pytest.raises(ValueError, match=r"'nccl' needs CUDA GPUs"):
        ddp.init_from_env("nccl")


def test_init_from_env_names_missing_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WORLD_SIZE", "2")
    clean_env.setenv("RANK", "0")
    with pytest.raises(ValueError, match=r"LOCAL_RANK, MASTER_ADDR, MASTER_PORT not set.*torchrun"):
        ddp.init_from_env("gloo")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "two"}, r"WORLD_SIZE must be an integer, got 'two'"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, r"RANK must be in \[0, 2\), got 2"),
    ],
)
def test_init_from_env_rejects_bad_values(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    base = {"RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    for key, value in {**base, **env}.items():
        clean_env.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        ddp.init_from_env("gloo")
    assert not torch.distributed.is_initialized()


def test_process_group_restores_the_log_level(clean_env: pytest.MonkeyPatch) -> None:
    logger = logging.getLogger("contrastkit")
    level = logger.level
    with ddp.process_group("gloo"):
        assert logger.level == level  # rank 0 keeps its level
    assert logger.level == level

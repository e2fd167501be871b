"""The training state: run length, one update, the NaN guard, snapshot and restore."""

import copy
import math

import pytest
import torch
from torch import nn

from contrastkit.training.config import TrainConfig
from contrastkit.training.state import RunLength, TrainingDiverged, TrainingState


class Linear(nn.Linear):
    def parameter_groups(self) -> list[dict]:
        return [{"params": list(self.parameters())}]


def config(**overrides) -> TrainConfig:
    values = {"steps": 10, "batch_size": 4, "lr": 0.1, "weight_decay": 0.0, "warmup_steps": 2}
    return TrainConfig(**{**values, **overrides})


def make_state(seed: int = 0, **overrides) -> TrainingState:
    torch.manual_seed(seed)
    model = Linear(3, 1)
    return TrainingState(model, config(**overrides), RunLength(5, 10, 2), torch.device("cpu"))


def take_step(state: TrainingState, x: torch.Tensor) -> float:
    state.optimizer.zero_grad(set_to_none=True)
    with state.autocast():
        loss = state.model(x).pow(2).mean()
    state.backward(loss)
    lr = state.optimizer_step(clip=1.0)
    state.step += 1
    return lr


def test_run_length_from_steps_or_epochs():
    assert RunLength.of(config(), 22) == RunLength(per_epoch=5, total=10, warmup=2)
    by_epochs = config(steps=None, epochs=3, warmup_steps=None, warmup_epochs=0.5)
    assert RunLength.of(by_epochs, 22) == RunLength(per_epoch=5, total=15, warmup=2)


def test_optimizer_step_returns_the_scheduled_lr_and_advances_the_schedule():
    state = make_state()
    x = torch.randn(4, 3)
    assert [take_step(state, x) for _ in range(3)] == pytest.approx([0.05, 0.1, 0.1])
    assert state.scaler is None  # float32 and bf16 (the CPU's choices) need no loss scaling


def test_snapshot_then_restore_continues_exactly():
    a, x = make_state(), torch.randn(4, 3)
    for _ in range(3):
        take_step(a, x)
    saved = copy.deepcopy(a.snapshot(config()))  # as written to disk: not the live tensors
    after = [take_step(a, x) for _ in range(2)]
    b = make_state(seed=1)  # other initial weights: restore must overwrite them
    b.restore(saved, path="ck.pt")
    assert (b.step, b.checkpoint, b.checkpoint_step) == (3, "ck.pt", 3)
    assert [take_step(b, x) for _ in range(2)] == after
    assert torch.equal(a.model.weight, b.model.weight)


def test_restore_refuses_a_checkpoint_of_another_model():
    saved = make_state().snapshot(config())
    saved["model"] = {"weight": torch.zeros(2, 2)}
    with pytest.raises(ValueError, match="not a contrastkit checkpoint"):
        make_state().restore(saved, path="ck.pt")


def test_non_finite_loss_names_the_step_and_the_last_checkpoint():
    state = make_state()
    state.step, state.checkpoint, state.checkpoint_step = 6, "ck.pt", 4
    with pytest.raises(TrainingDiverged, match="loss is nan at step 7.*ck.pt \\(step 4\\)"):
        state.backward(torch.tensor(math.nan, requires_grad=True))
    assert state.model.weight.grad is None

import math

import pytest
import torch
from torch import nn

from contrastkit.training.optim import build_optimizer, build_scheduler, lr_factor, split_decay


def test_warmup_then_cosine_to_min_ratio():
    total, warmup = 11, 2
    factors = [lr_factor(s, total, warmup, "cosine", 0.1) for s in range(total)]
    assert factors[0] == pytest.approx(0.5) and factors[1] == pytest.approx(1.0)
    assert factors[2] == pytest.approx(1.0)  # cosine starts at the peak
    # halfway through the decay (step 2 + 4 of 8 decay steps) the cosine is at its mean
    assert factors[6] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factors[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[1:], factors[2:], strict=False))
    assert lr_factor(5, 10, 0, "constant") == 1.0


class _TwoGroups(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 3)
        self.norm = nn.LayerNorm(3)
        self.pred = nn.Linear(3, 2)

    def parameter_groups(self):
        body = [*self.body.parameters(), *self.norm.parameters()]
        return [{"params": body}, {"params": list(self.pred.parameters()), "fixed_lr": True}]


def test_no_decay_for_biases_and_norms_and_fixed_lr_groups_keep_their_rate():
    model = _TwoGroups()
    groups = split_decay(model.parameter_groups(), lr=0.1, weight_decay=0.05)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model.body.weight), id(model.pred.weight)}
    optimizer = build_optimizer(model, "sgd", lr=0.1, weight_decay=0.05)
    scheduler = build_scheduler(optimizer, total_steps=10, warmup_steps=4)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.025, 0.025, 0.1, 0.1])
    for _ in range(9):
        optimizer.step()
        scheduler.step()
    lrs = [g["lr"] for g in optimizer.param_groups]
    assert lrs[:2] == pytest.approx([0.0, 0.0], abs=1e-12) and lrs[2:] == pytest.approx([0.1, 0.1])


def test_adamw_decay_applies_to_weights_only():
    model = _TwoGroups()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    bias_before = model.body.bias.detach().clone()
    weight_before = model.body.weight.detach().clone()
    optimizer = build_optimizer(model, "adamw", lr=0.1, weight_decay=0.5)
    optimizer.step()
    assert torch.equal(model.body.bias, bias_before)  # zero gradient, no decay
    assert torch.allclose(model.body.weight, weight_before * (1 - 0.1 * 0.5))


def test_unknown_optimizer_and_empty_groups():
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(_TwoGroups(), "adam", 0.1, 0.0)
    with pytest.raises(ValueError, match="no trainable parameters"):
        split_decay([{"params": []}], 0.1, 0.0)

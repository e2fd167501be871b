"""Frozen copies, the EMA update and the cosine momentum schedule against their formulas."""

import math

import pytest
import torch
from torch import nn

from contrastkit.models.momentum import EMASchedule, cosine_momentum, ema_update_, frozen_copy


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def test_frozen_copy_is_equal_independent_and_frozen():
    online = _net()
    target = frozen_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    for (name, p), q in zip(online.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
        assert p.data_ptr() != q.data_ptr(), name


def test_ema_update_matches_formula_for_parameters_and_copies_buffers():
    online = _net()
    target = frozen_copy(online)
    with torch.no_grad():
        for p in target.parameters():
            p.add_(torch.randn_like(p))
        online(torch.randn(16, 4))  # moves online's BatchNorm running statistics
    before = {n: p.clone() for n, p in target.named_parameters()}
    m = 0.9
    ema_update_(target, online, m)
    for name, p in target.named_parameters():
        expected = m * before[name] + (1 - m) * dict(online.named_parameters())[name]
        torch.testing.assert_close(p, expected, rtol=1e-6, atol=1e-7)
        assert not p.requires_grad
    for name, b in target.named_buffers():
        assert torch.equal(b, dict(online.named_buffers())[name]), name


def test_ema_update_extremes():
    online, other = _net(), _net()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    target = frozen_copy(other)
    ema_update_(target, online, 1.0)
    for p, q in zip(target.parameters(), other.parameters(), strict=True):
        assert torch.equal(p, q)
    ema_update_(target, online, 0.0)
    for p, q in zip(target.parameters(), online.parameters(), strict=True):
        assert torch.equal(p, q)


def test_ema_update_builds_no_graph():
    online = _net()
    target = frozen_copy(online)
    ema_update_(target, online, 0.5)
    assert all(p.grad_fn is None and not p.requires_grad for p in target.parameters())


def test_ema_update_rejects_bad_input():
    with pytest.raises(ValueError, match="momentum must be in"):
        ema_update_(_net(), _net(), 1.5)
    with pytest.raises(ValueError, match="differ in names"):
        ema_update_(nn.Linear(4, 3), _net(), 0.5)
    with pytest.raises(ValueError, match="shape"):
        ema_update_(nn.Linear(4, 3), nn.Linear(4, 5), 0.5)


@pytest.mark.parametrize("base", [0.99, 0.996])
def test_cosine_momentum_matches_formula(base):
    total = 1000
    assert cosine_momentum(0, total, base) == pytest.approx(base)
    assert cosine_momentum(total // 2, total, base) == pytest.approx((1 + base) / 2)
    assert cosine_momentum(total, total, base) == pytest.approx(1.0)
    assert cosine_momentum(2 * total, total, base) == pytest.approx(1.0)
    step = 250
    expected = 1 - (1 - base) * (math.cos(math.pi * step / total) + 1) / 2
    assert cosine_momentum(step, total, base) == pytest.approx(expected)
    values = [cosine_momentum(s, total, base) for s in range(0, total + 1, 50)]
    assert values == sorted(values)


def test_cosine_momentum_custom_final():
    assert cosine_momentum(5, 10, 0.5, final=0.7) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, 0, 0.9), "total_steps"), ((-1, 10, 0.9), "step"), ((0, 10, 1.2), "base")],
)
def test_cosine_momentum_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        cosine_momentum(*args)


def test_ema_schedule_is_the_cosine_schedule_and_updates_every_pair():
    schedule = EMASchedule(0.9)
    assert schedule.at(0, 10) == pytest.approx(0.9)
    assert schedule.at(5, 10) == cosine_momentum(5, 10, 0.9)
    assert schedule.at(3, 0) == cosine_momentum(3, 1, 0.9)  # unknown length: at least 1 step
    assert EMASchedule(0.99, 0.99).at(7, 10) == 0.99  # final == base: constant (MoCo v2)
    online, other = _net(), _net()
    targets = [frozen_copy(other), frozen_copy(other)]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    momentum = schedule.update_([(t, online) for t in targets], 5, 10)
    assert momentum == schedule.at(5, 10)
    for target in targets:
        for name, p in target.named_parameters():
            expected = momentum * dict(other.named_parameters())[name]
            expected = expected + (1 - momentum) * dict(online.named_parameters())[name]
            torch.testing.assert_close(p, expected)


@pytest.mark.parametrize(("base", "final", "match"), [(1.5, 1.0, "base"), (0.9, -0.1, "final")])
def test_ema_schedule_rejects_momenta_outside_0_1(base, final, match):
    with pytest.raises(ValueError, match=f"{match} momentum must be in"):
        EMASchedule(base, final)

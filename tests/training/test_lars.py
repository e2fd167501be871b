import pytest
import torch

from contrastkit.training.lars import LARS


def test_one_step_matches_the_formula():
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # ||w|| = 5
    b = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    w.grad = torch.tensor([[0.6, 0.8]])  # ||g|| = 1
    b.grad = torch.tensor([0.5, -0.5])
    opt = LARS([w, b], lr=0.1, momentum=0.9, weight_decay=0.0, trust_coefficient=0.001)
    opt.step()
    trust = 0.001 * 5 / 1
    assert torch.allclose(w, torch.tensor([[3.0, 4.0]]) - 0.1 * trust * torch.tensor([[0.6, 0.8]]))
    # ndim <= 1 parameters are not adapted: plain SGD
    assert torch.allclose(b, torch.tensor([1.0 - 0.05, 1.0 + 0.05]))


def test_weight_decay_enters_the_trust_ratio_and_momentum_accumulates():
    w = torch.nn.Parameter(torch.tensor([[1.0, 0.0]]))
    opt = LARS([w], lr=1.0, momentum=0.5, weight_decay=0.1, trust_coefficient=0.01)
    updates = []
    for _ in range(2):
        w.grad = torch.tensor([[0.0, 0.3]])
        update = w.grad + 0.1 * w.detach()
        trust = 0.01 * w.detach().norm() / update.norm()
        updates.append(update * trust)
        before = w.detach().clone()
        opt.step()
        expected = updates[0] if len(updates) == 1 else 0.5 * updates[0] + updates[1]
        assert torch.allclose(before - w.detach(), expected, atol=1e-7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="lr"):
        LARS([torch.nn.Parameter(torch.ones(2, 2))], lr=0.0)

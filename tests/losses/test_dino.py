"""DINO loss against a per-pair, per-sample float64 implementation."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import DINOLoss, dino_loss


def _softmax(row: list[float], temp: float) -> list[float]:
    top = max(row)
    exps = [math.exp((x - top) / temp) for x in row]
    return [e / sum(exps) for e in exps]


def ref_dino(student, teacher, center, t_temp, s_temp) -> float:
    total, pairs = 0.0, 0
    for i, teacher_view in enumerate(teacher.tolist()):
        for j, student_view in enumerate(student.tolist()):
            if i == j:
                continue
            ce = 0.0
            for t_row, s_row in zip(teacher_view, student_view, strict=True):
                target = _softmax(
                    [x - c for x, c in zip(t_row, center.tolist(), strict=True)], t_temp
                )
                log_p = [math.log(p) for p in _softmax(s_row, s_temp)]
                ce -= sum(t * lp for t, lp in zip(target, log_p, strict=True))
            total += ce / len(teacher_view)
            pairs += 1
    return total / pairs


def _case(seed: int, V: int, G: int, B: int, K: int):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(V, B, K, generator=g, dtype=torch.float64)
    teacher = torch.randn(G, B, K, generator=g, dtype=torch.float64)
    center = 0.1 * torch.randn(K, generator=g, dtype=torch.float64)
    return student, teacher, center


@pytest.mark.parametrize(("V", "G", "B", "K"), [(2, 2, 3, 5), (6, 2, 4, 7), (3, 1, 2, 4)])
@pytest.mark.parametrize(("t_temp", "s_temp"), [(0.04, 0.1), (0.07, 0.2)])
def test_dino_matches_reference(V, G, B, K, t_temp, s_temp):
    student, teacher, center = _case(V * 10 + G, V, G, B, K)
    got = dino_loss(student, teacher, center, t_temp, s_temp)
    assert got.item() == pytest.approx(ref_dino(student, teacher, center, t_temp, s_temp), rel=1e-6)


def test_gradcheck_and_teacher_gets_no_gradient():
    student, teacher, center = _case(0, 4, 2, 3, 5)
    student.requires_grad_()
    teacher.requires_grad_()
    fn = lambda s: dino_loss(s, teacher, center, 0.5, 0.3)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (student,), fast_mode=True)
    dino_loss(student, teacher, center).backward()
    assert teacher.grad is None and student.grad is not None


def test_uniform_student_gives_log_k_and_module_matches():
    # log_softmax of constant logits is -log K everywhere, so every pair's cross-entropy is
    # -sum_k P_t[k] * (-log K) = log K whatever the teacher says.
    student, teacher, center = _case(1, 4, 2, 3, 6)
    flat = dino_loss(torch.zeros_like(student), teacher, center)
    assert flat.item() == pytest.approx(math.log(6), rel=1e-12)
    module = DINOLoss(0.05, 0.2)
    want = dino_loss(student, teacher, center, 0.05, 0.2).item()
    assert module(student, teacher, center).item() == pytest.approx(want)
    want_override = dino_loss(student, teacher, center, 0.07, 0.2).item()
    assert module(student, teacher, center, teacher_temp=0.07).item() == pytest.approx(
        want_override
    )


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((4, 3, 5), (2, 3, 6), (5,)), r"teacher \(G, B, K\) must share B and K"),
        (((4, 3, 5), (2, 2, 5), (5,)), r"got teacher \(2, 2, 5\) and student \(4, 3, 5\)"),
        (((1, 3, 5), (2, 3, 5), (5,)), r"1 <= G <= V .* \(G=2\) .* \(V=1\)"),
        (((1, 3, 5), (1, 3, 5), (5,)), "at least one pair of different views"),
        (((4, 3, 5), (2, 3, 5), (4,)), r"center must have shape \(K,\) = \(5,\), got \(4,\)"),
        (((3, 5), (2, 3, 5), (5,)), r"student must have shape \(V, B, K\), got \(3, 5\)"),
        (((4, 3, 5), (3, 5), (5,)), r"teacher must have shape \(G, B, K\)"),
    ],
)
def test_bad_shapes_raise(shapes, message):
    student, teacher, center = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=message):
        dino_loss(student, teacher, center)


def test_bad_temperatures_raise():
    student, teacher, center = _case(2, 3, 2, 2, 4)
    with pytest.raises(ValueError, match="teacher_temp must be > 0"):
        dino_loss(student, teacher, center, teacher_temp=0)
    with pytest.raises(ValueError, match="student_temp must be > 0"):
        DINOLoss(student_temp=-0.1)

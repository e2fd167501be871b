"""Barlow Twins loss against an element-by-element float64 implementation."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import BarlowTwinsLoss, barlow_twins_loss


def ref_barlow(z1: torch.Tensor, z2: torch.Tensor, lam: float, eps: float = 1e-5) -> float:
    n, d = z1.shape
    a, b = z1.tolist(), z2.tolist()

    def standardised(rows, k):
        column = [r[k] for r in rows]
        mean = sum(column) / n
        var = sum((x - mean) ** 2 for x in column) / n
        return [(x - mean) / math.sqrt(var + eps) for x in column]

    a_cols = [standardised(a, k) for k in range(d)]
    b_cols = [standardised(b, k) for k in range(d)]
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(x * y for x, y in zip(a_cols[i], b_cols[j], strict=True)) / n
            loss += (1 - c) ** 2 if i == j else lam * c**2
    return loss


def _pair(seed: int, n: int, d: int):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=g, dtype=torch.float64)
    return z1, 0.5 * z1 + torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("n", "d"), [(2, 2), (7, 3), (16, 5)])
@pytest.mark.parametrize("lam", [5e-3, 0.5])
def test_matches_reference(n, d, lam):
    z1, z2 = _pair(n + d, n, d)
    assert barlow_twins_loss(z1, z2, lam).item() == pytest.approx(ref_barlow(z1, z2, lam), rel=1e-6)


def test_gradcheck_and_symmetry():
    z1, z2 = _pair(0, 6, 4)
    z1.requires_grad_()
    z2.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: barlow_twins_loss(a, b, 0.1), (z1, z2), fast_mode=True
    )
    assert barlow_twins_loss(z1, z2).item() == pytest.approx(barlow_twins_loss(z2, z1).item())


def test_identical_whitened_decorrelated_views_give_zero():
    # Columns of Q from the QR of a centred matrix are orthonormal and have zero mean, so
    # z = sqrt(N) Q has per-dimension mean 0, biased variance 1 and z^T z / N = I.
    n, d = 12, 4
    a = torch.randn(n, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    q, _ = torch.linalg.qr(a - a.mean(0))
    z = q * math.sqrt(n)
    assert barlow_twins_loss(z, z.clone(), eps=0.0).item() == pytest.approx(0.0, abs=1e-20)
    # the default eps keeps it within eps of zero; a correlated view does not
    assert barlow_twins_loss(z, z.clone()).item() < 1e-9
    assert barlow_twins_loss(z, z.roll(1, dims=1)).item() > 1.0


def test_module_and_bad_inputs():
    z1, z2 = _pair(1, 5, 3)
    want = barlow_twins_loss(z1, z2, 0.01).item()
    assert BarlowTwinsLoss(0.01)(z1, z2).item() == pytest.approx(want)
    with pytest.raises(ValueError, match=r"z1 and z2 must have the same shape"):
        barlow_twins_loss(z1, z2[:, :2])
    with pytest.raises(ValueError, match=r"z1 must have at least 2 rows .* got shape \(1, 3\)"):
        barlow_twins_loss(z1[:1], z2[:1])

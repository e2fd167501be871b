"""VICReg terms against element-by-element float64 implementations."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import (
    VICRegLoss,
    vicreg_covariance,
    vicreg_invariance,
    vicreg_loss,
    vicreg_terms,
    vicreg_variance,
)


def _columns(z: torch.Tensor) -> list[list[float]]:
    rows = z.tolist()
    return [[r[k] for r in rows] for k in range(z.shape[1])]


def ref_variance(z: torch.Tensor, eps: float) -> float:
    out = []
    for col in _columns(z):
        mean = sum(col) / len(col)
        var = sum((x - mean) ** 2 for x in col) / (len(col) - 1)
        out.append(max(0.0, 1 - math.sqrt(var + eps)))
    return sum(out) / len(out)


def ref_covariance(z: torch.Tensor) -> float:
    cols = _columns(z)
    n, d = z.shape
    means = [sum(c) / n for c in cols]
    total = 0.0
    for i in range(d):
        for j in range(d):
            if i != j:
                cov = sum(
                    (a - means[i]) * (b - means[j]) for a, b in zip(cols[i], cols[j], strict=True)
                )
                total += (cov / (n - 1)) ** 2
    return total / d


def ref_invariance(z1: torch.Tensor, z2: torch.Tensor) -> float:
    diffs = [
        (a - b) ** 2
        for ra, rb in zip(z1.tolist(), z2.tolist(), strict=True)
        for a, b in zip(ra, rb, strict=True)
    ]
    return sum(diffs) / len(diffs)


def _pair(seed: int, n: int, d: int, spread: float = 0.7):
    g = torch.Generator().manual_seed(seed)
    z1 = spread * torch.randn(n, d, generator=g, dtype=torch.float64)
    return z1, z1 + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("n", "d"), [(2, 2), (9, 4), (16, 6)])
def test_terms_and_loss_match_reference(n, d):
    z1, z2 = _pair(n * d, n, d)
    eps = 1e-4
    assert vicreg_invariance(z1, z2).item() == pytest.approx(ref_invariance(z1, z2), rel=1e-6)
    assert vicreg_variance(z1, eps).item() == pytest.approx(ref_variance(z1, eps), rel=1e-6)
    assert vicreg_covariance(z2).item() == pytest.approx(ref_covariance(z2), rel=1e-6)
    expected = (
        25 * ref_invariance(z1, z2)
        + 25 * (ref_variance(z1, eps) + ref_variance(z2, eps)) / 2
        + 1 * (ref_covariance(z1) + ref_covariance(z2))
    )
    assert vicreg_loss(z1, z2).item() == pytest.approx(expected, rel=1e-6)
    terms = vicreg_terms(z1, z2)
    assert set(terms) == {"invariance", "variance", "covariance"}
    assert VICRegLoss(2.0, 3.0, 4.0)(z1, z2).item() == pytest.approx(
        vicreg_loss(z1, z2, 2.0, 3.0, 4.0).item()
    )


def test_gradcheck_and_symmetry():
    z1, z2 = _pair(0, 6, 3)
    z1.requires_grad_()
    z2.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: vicreg_loss(a, b), (z1, z2), fast_mode=True)
    assert vicreg_loss(z1, z2).item() == pytest.approx(vicreg_loss(z2, z1).item(), rel=1e-12)


def test_variance_is_zero_when_every_std_is_at_least_one():
    z = torch.randn(32, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z = z / z.std(0) * torch.tensor([1.0, 1.5, 2.0, 3.0, 10.0], dtype=torch.float64)
    assert vicreg_variance(z).item() == 0.0
    assert vicreg_variance(z * 0.5).item() > 0.0


def test_covariance_is_zero_for_decorrelated_dims():
    a = torch.randn(10, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    q, _ = torch.linalg.qr(a - a.mean(0))
    assert vicreg_covariance(q * 3).item() == pytest.approx(0.0, abs=1e-25)


def test_bad_inputs_raise():
    z = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"z1 and z2 must have the same shape"):
        vicreg_loss(z, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"z must have at least 2 rows .* got shape \(1, 3\)"):
        vicreg_variance(z[:1])
    with pytest.raises(ValueError, match=r"z must have shape \(N, D\), got \(4,\)"):
        vicreg_covariance(torch.zeros(4))

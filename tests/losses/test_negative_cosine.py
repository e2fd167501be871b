"""Negative cosine similarity against a per-row float64 formula."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import NegativeCosineLoss, negative_cosine


def ref_negative_cosine(p: torch.Tensor, z: torch.Tensor) -> float:
    total = 0.0
    for a, b in zip(p.tolist(), z.tolist(), strict=True):
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        total -= dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
    return total / len(p)


@pytest.mark.parametrize(("n", "d"), [(1, 2), (5, 3), (8, 16)])
def test_matches_reference_and_gradcheck(n, d):
    g = torch.Generator().manual_seed(n)
    p = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    assert negative_cosine(p, z).item() == pytest.approx(ref_negative_cosine(p, z), rel=1e-6)
    assert torch.autograd.gradcheck(lambda x: negative_cosine(x, z), (p,), fast_mode=True)
    assert NegativeCosineLoss()(p, z).item() == pytest.approx(negative_cosine(p, z).item())


def test_known_values():
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    assert negative_cosine(2 * z, z).item() == pytest.approx(-1.0)
    assert negative_cosine(-z, z).item() == pytest.approx(1.0)


def test_bad_shapes_raise():
    with pytest.raises(
        ValueError, match=r"p and z must have the same shape .* \(4, 3\) and \(4, 2\)"
    ):
        negative_cosine(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"p must have shape \(N, D\), got \(4,\)"):
        negative_cosine(torch.zeros(4), torch.zeros(4))

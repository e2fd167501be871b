"""Tiled log-sum-exps: same values and gradients as the dense computation."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

from contrastkit.losses import clip_loss, info_nce, nt_xent
from contrastkit.losses.tiled import FAST_BOUND, cross_lse, symmetric_lse


def _unit(seed: int, n: int, d: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=1)


def _dense_lse(a, b, mask_offset=None, dim=1):
    x = a @ b.T
    if mask_offset is not None:
        x = x.clone()
        x.diagonal(mask_offset).fill_(float("-inf"))
    return torch.logsumexp(x, dim=dim)


def assert_relative(got: torch.Tensor, want: torch.Tensor, tol: float) -> None:
    scale = want.abs().max().clamp_min(1e-30)
    assert (got - want).abs().max() <= tol * scale, (got, want)


@pytest.mark.parametrize("tile", [1, 3, 5, 64])  # 13 rows: ragged last tiles, one tile
@pytest.mark.parametrize("scale", [2.0, FAST_BOUND, 100.0])
def test_symmetric_and_cross_lse_match_logsumexp(tile, scale):
    z = _unit(0, 13, 4)
    want = _dense_lse(z * scale, z, mask_offset=0)
    if scale <= FAST_BOUND:
        assert_relative(symmetric_lse(z, scale, tile), want, 1e-12)
    for bound in (scale, None):  # direct exp where allowed, robust shifts always
        got = cross_lse(z * scale, z, tile, mask_offset=0, bound=bound)
        assert_relative(got, want, 1e-12)


@pytest.mark.parametrize("tile", [2, 4, 100])
@pytest.mark.parametrize("bound", [3.0, None])
def test_cross_lse_rows_and_columns_with_offset_mask(tile, bound):
    a, b = _unit(1, 7, 5) * 3.0, _unit(2, 11, 5)  # a rank's 7 rows against 11 gathered columns
    for offset in (None, 0, 4, -2):
        rows = cross_lse(a, b, tile, mask_offset=offset, bound=bound)
        assert_relative(rows, _dense_lse(a, b, offset), 1e-12)
    rows, cols = cross_lse(a, b, tile, columns=True, bound=bound)
    assert_relative(rows, _dense_lse(a, b), 1e-12)
    assert_relative(cols, _dense_lse(a, b, dim=0), 1e-12)


def test_gradcheck_of_tiled_functions():
    # Unit rows are required (|x| <= bound); gradcheck perturbs them slightly off the sphere,
    # which the bounds used here tolerate.
    z = _unit(3, 7, 3).requires_grad_()
    a, b = (_unit(4, 5, 3) * 2.0).requires_grad_(), _unit(5, 8, 3).requires_grad_()
    weights = torch.linspace(-1, 2, 8, dtype=torch.float64)  # arbitrary output gradients
    checks = [
        (lambda z: symmetric_lse(z, 2.0, 3), (z,)),
        (lambda a, b: cross_lse(a, b, 3, mask_offset=1, bound=2.5), (a, b)),
        (lambda a, b: cross_lse(a, b, 3, mask_offset=-1), (a, b)),
        (lambda a, b: [x * weights[: len(x)] for x in cross_lse(a, b, 3, columns=True)], (a, b)),
        (lambda a, b: cross_lse(a, b, 2, columns=True, bound=2.5)[1], (a, b)),
    ]
    for fn, inputs in checks:
        assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)


def _float32_case(name: str, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    z1, z2 = torch.randn(n, 16, generator=g), torch.randn(n, 16, generator=g)
    negatives = torch.randn(3 * n + 1, 16, generator=g)
    scale = torch.tensor(30.0)
    calls = {
        "nt_xent": (lambda a, b, **k: nt_xent(a, b, 0.1, **k), [z1, z2]),
        "nt_xent_cold": (lambda a, b, **k: nt_xent(a, b, 0.01, **k), [z1, z2]),
        "info_nce_batch": (lambda a, b, **k: info_nce(a, b, None, 0.07, **k), [z1, z2]),
        "info_nce_queue": (lambda a, b, c, **k: info_nce(a, b, c, 0.2, **k), [z1, z2, negatives]),
        "clip": (lambda a, b, s, **k: clip_loss(a, b, s, **k), [z1, z2, scale]),
        "clip_float_scale": (lambda a, b, **k: clip_loss(a, b, 20.0, **k), [z1, z2]),
    }
    return calls[name]


@pytest.mark.parametrize(
    "name",
    ["nt_xent", "nt_xent_cold", "info_nce_batch", "info_nce_queue", "clip", "clip_float_scale"],
)
@pytest.mark.parametrize(("n", "tile"), [(37, 8), (64, 64), (50, 1024)])
def test_tiled_matches_dense_in_float32(name, n, tile):
    fn, inputs = _float32_case(name, n, seed=n)
    results = {}
    for impl in ("dense", "tiled"):
        leaves = [x.clone().requires_grad_() for x in inputs]
        value = fn(*leaves, impl=impl, tile_size=tile)
        results[impl] = (value, torch.autograd.grad(value, leaves))
    (dense, dense_grads), (tiled, tiled_grads) = results["dense"], results["tiled"]
    assert_relative(tiled, dense, 1e-5)
    for got, want in zip(tiled_grads, dense_grads, strict=True):
        assert_relative(got, want, 1e-5)


def test_auto_picks_tiled_only_for_large_matrices(monkeypatch):
    module = importlib.import_module("contrastkit.losses.info_nce")
    calls = []
    monkeypatch.setattr(module, "symmetric_lse", lambda *a: calls.append(a) or a[0].sum(1))
    z = torch.randn(8, 4)
    nt_xent(z, z)  # 16 x 16 logits on CPU: dense
    assert not calls
    monkeypatch.setitem(module.AUTO_TILED_MIN_LOGITS, "cpu", 16 * 16)
    nt_xent(z, z)
    assert len(calls) == 1


@pytest.mark.parametrize("bad", [0, -4, 2.5, True])
def test_bad_tile_size_raises(bad):
    z = _unit(6, 4, 3)
    with pytest.raises(ValueError, match="tile_size must be a positive int or None"):
        symmetric_lse(z, 2.0, bad)
    with pytest.raises(ValueError, match="tile_size must be a positive int or None"):
        cross_lse(z, z, bad)
    with pytest.raises(ValueError, match=r"scale must be in \(0, 40.0\]"):
        symmetric_lse(z, 41.0)


def test_backward_inside_cpu_autocast_region_stays_float32():
    # On CPU the backward runs in the caller's thread, possibly still under autocast.
    z1, z2 = (_unit(s, 20, 6, torch.float32).requires_grad_() for s in (7, 8))
    want = torch.autograd.grad(nt_xent(z1, z2, 0.2, impl="dense"), (z1, z2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nt_xent(z1, z2, 0.2, impl="tiled", tile_size=8)
        got = torch.autograd.grad(loss, (z1, z2))
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32
        assert_relative(g, w, 1e-5)

"""NT-Xent, InfoNCE and CLIP against straightforward per-row float64 implementations."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit import distributed
from contrastkit.losses import (
    CLIPLoss,
    InfoNCELoss,
    NTXentLoss,
    clip_loss,
    info_nce,
    info_nce_bound,
    nt_xent,
)

IMPLS = ["dense", "tiled"]


def _unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _ce(logits: list[float], target: int) -> float:
    """-log softmax(logits)[target], written out."""
    return -logits[target] + math.log(sum(math.exp(x) for x in logits))


def ref_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    views = [_unit(v) for v in z1.tolist() + z2.tolist()]
    n = len(z1)
    total = 0.0
    for i, anchor in enumerate(views):
        others = [j for j in range(2 * n) if j != i]
        logits = [_dot(anchor, views[j]) / t for j in others]
        total += _ce(logits, others.index((i + n) % (2 * n)))
    return total / (2 * n)


def ref_info_nce(q: torch.Tensor, k: torch.Tensor, neg: torch.Tensor | None, t: float) -> float:
    qs, ks = [_unit(v) for v in q.tolist()], [_unit(v) for v in k.tolist()]
    total = 0.0
    for i, qi in enumerate(qs):
        if neg is None:
            total += _ce([_dot(qi, kj) / t for kj in ks], i)
        else:
            columns = [ks[i]] + [_unit(v) for v in neg.tolist()]
            total += _ce([_dot(qi, c) / t for c in columns], 0)
    return total / len(qs)


def ref_clip(image: torch.Tensor, text: torch.Tensor, scale: float) -> float:
    imgs, txts = [_unit(v) for v in image.tolist()], [_unit(v) for v in text.tolist()]
    n = len(imgs)
    i2t = sum(_ce([scale * _dot(imgs[i], txts[j]) for j in range(n)], i) for i in range(n))
    t2i = sum(_ce([scale * _dot(txts[i], imgs[j]) for j in range(n)], i) for i in range(n))
    return (i2t + t2i) / (2 * n)


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d", "t"), [(2, 3, 0.5), (5, 4, 0.1), (9, 7, 0.07), (4, 6, 0.01)])
def test_nt_xent_matches_reference(impl, n, d, t):
    z1, z2 = _randn(n, n, d), _randn(100 + n, n, d)
    got = nt_xent(z1, z2, t, impl=impl, tile_size=4)
    assert got.item() == pytest.approx(ref_nt_xent(z1, z2, t), rel=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d", "k", "t"), [(2, 3, 1, 0.2), (6, 5, 11, 0.07), (5, 4, 0, 0.2)])
def test_info_nce_with_negatives_matches_reference(impl, n, d, k, t):
    q, key, neg = _randn(1, n, d), _randn(2, n, d), _randn(3, k, d)
    got = info_nce(q, key, neg, t, impl=impl, tile_size=4)
    assert got.item() == pytest.approx(ref_info_nce(q, key, neg, t), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d", "t"), [(2, 3, 0.2), (7, 5, 0.05), (10, 8, 0.02)])
def test_info_nce_in_batch_matches_reference(impl, n, d, t):
    q, key = _randn(4, n, d), _randn(5, n, d)
    got = info_nce(q, key, temperature=t, impl=impl, tile_size=3)
    assert got.item() == pytest.approx(ref_info_nce(q, key, None, t), rel=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d", "scale"), [(2, 3, 1.0), (6, 4, 1 / 0.07), (9, 5, 100.0)])
def test_clip_matches_reference(impl, n, d, scale):
    image, text = _randn(6, n, d), _randn(7, n, d)
    expected = ref_clip(image, text, scale)
    as_tensor = torch.tensor(scale, dtype=torch.float64)
    for logit_scale in (as_tensor, scale):
        got = clip_loss(image, text, logit_scale, impl=impl, tile_size=4)
        assert got.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_gradcheck_float64(impl):
    z1, z2, neg = (_randn(s, 5, 4).requires_grad_() for s in (8, 9, 10))
    scale = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    kw = {"impl": impl, "tile_size": 3}
    checks = [
        (lambda a, b: nt_xent(a, b, 0.3, **kw), (z1, z2)),
        (lambda a, b, c: info_nce(a, b, c, 0.2, **kw), (z1, z2, neg)),
        (lambda a, b: info_nce(a, b, None, 0.2, **kw), (z1, z2)),
        (lambda a, b, s: clip_loss(a, b, s, **kw), (z1, z2, scale)),  # includes d/d logit_scale
    ]
    for fn, inputs in checks:
        assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", [2, 5])
def test_identical_embeddings_give_log_of_candidates(impl, n):
    z = torch.ones(n, 8, dtype=torch.float64)
    assert nt_xent(z, z, 0.5, impl=impl).item() == pytest.approx(math.log(2 * n - 1), rel=1e-12)
    assert clip_loss(z, z, torch.tensor(20.0), impl=impl).item() == pytest.approx(math.log(n))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "t"), [(3, 0.5), (6, 0.1)])
def test_orthogonal_aligned_pairs_closed_form(impl, n, t):
    # z1_i = z2_i = e_i. Anchor i: its partner has cosine 1 (logit 1/t), the 2N - 2 other views
    # are orthogonal (logit 0) and itself is left out, so
    #   loss = -log(e^{1/t} / (e^{1/t} + (2N - 2) e^0)) = log(1 + (2N - 2) e^{-1/t}),
    # the same for every anchor and hence for the mean.
    z = torch.eye(n, n + 2, dtype=torch.float64) * 3.0  # scale must not matter
    expected = math.log1p((2 * n - 2) * math.exp(-1 / t))
    assert nt_xent(z, z, t, impl=impl).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
def test_swapping_views_leaves_loss_unchanged(impl):
    z1, z2 = _randn(11, 7, 5), _randn(12, 7, 5)
    kw = {"impl": impl, "tile_size": 4}
    assert nt_xent(z1, z2, **kw).item() == pytest.approx(nt_xent(z2, z1, **kw).item(), rel=1e-12)
    scale = torch.tensor(5.0, dtype=torch.float64)
    swapped = clip_loss(z2, z1, scale, **kw).item()
    assert clip_loss(z1, z2, scale, **kw).item() == pytest.approx(swapped, rel=1e-12)


def test_low_precision_inputs_are_computed_in_float32():
    z1, z2 = _randn(13, 6, 4), _randn(14, 6, 4)
    half = nt_xent(z1.to(torch.bfloat16), z2.to(torch.bfloat16))
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(nt_xent(z1, z2).item(), rel=1e-2)


def test_info_nce_bound():
    assert info_nce_bound(0) == 0.0
    assert info_nce_bound(30) == pytest.approx(math.log(31))
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="num_negatives must be an int >= 0"):
            info_nce_bound(bad)


def test_modules_wrap_functions():
    z1, z2, neg = _randn(15, 4, 3), _randn(16, 4, 3), _randn(17, 6, 3)
    assert NTXentLoss(0.2)(z1, z2).item() == pytest.approx(nt_xent(z1, z2, 0.2).item())
    assert InfoNCELoss(0.3)(z1, z2, neg).item() == pytest.approx(info_nce(z1, z2, neg, 0.3).item())
    scale = torch.tensor(7.0)
    assert CLIPLoss()(z1, z2, scale).item() == pytest.approx(clip_loss(z1, z2, scale).item())
    assert "temperature=0.2" in repr(NTXentLoss(0.2))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: nt_xent(torch.randn(4, 3), torch.randn(4, 2)),
            r"z1 and z2 .* \(4, 3\) and \(4, 2\)",
        ),
        (
            lambda: nt_xent(torch.randn(4), torch.randn(4)),
            r"z1 must have shape \(N, D\), got \(4,\)",
        ),
        (lambda: nt_xent(torch.randn(1, 3), torch.randn(1, 3)), r"z1 must have at least 2 rows"),
        (lambda: nt_xent(torch.randn(4, 3), torch.randn(4, 3), 0.0), "temperature must be > 0"),
        (lambda: nt_xent(torch.randn(4, 3), torch.randn(4, 3), impl="fast"), "impl must be one of"),
        (
            lambda: nt_xent(torch.randn(4, 3), torch.randn(4, 3), tile_size=0),
            "tile_size must be a positive int or None, got 0",
        ),
        (lambda: info_nce(torch.randn(1, 3), torch.randn(1, 3)), "query must have at least 2 rows"),
        (
            lambda: info_nce(torch.randn(4, 3), torch.randn(4, 3), torch.randn(5, 2)),
            r"negatives must have shape \(K, D\) with D = 3 .* got \(5, 2\)",
        ),
        (lambda: info_nce(torch.randn(4, 3), torch.randn(4, 3), temperature=-1), "temperature"),
        (
            lambda: clip_loss(torch.randn(4, 3), torch.randn(4, 3), torch.ones(1)),
            r"logit_scale must be a 0-dim tensor .* got shape \(1,\)",
        ),
        (lambda: clip_loss(torch.randn(4, 3), torch.randn(5, 3), 1.0), "image and text"),
        (lambda: clip_loss(torch.randn(4, 3), torch.randn(4, 3), 0.0), "logit_scale must be > 0"),
        (lambda: NTXentLoss(temperature=0), "temperature must be > 0"),
    ],
)
def test_bad_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _fake_gather(rank: int, providers: list[torch.Tensor]):
    """Return a gather for ``rank``: the provider whose slice ``rank`` equals x, with x put there.

    The providers are the gathered tensors computed from the whole batch with gradient, so the
    other ranks' slices carry their gradient back to the whole batch, as all_gather's backward
    (which sums every rank's gradient into the owner) does.
    """

    def gather(x: torch.Tensor, name: str = "") -> torch.Tensor:
        for full in providers:
            parts = list(full.split(x.shape[0]))
            if torch.allclose(parts[rank], x, rtol=0, atol=1e-15):
                parts[rank] = x
                return torch.cat(parts)
        raise AssertionError("gather was called with an unexpected tensor")

    return gather


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("loss", ["nt_xent", "info_nce", "clip"])
def test_local_rows_against_gathered_columns_give_the_global_loss(impl, loss, monkeypatch):
    # W processes with N rows each. The mean of their losses must be the loss of the whole batch
    # on one process, and the gradient of the sum of their losses (what DDP sees: gather's
    # backward sums over processes, DDP then divides by W) must be W times the whole-batch one.
    world, n, d = 3, 4, 5
    z1, z2 = (_randn(seed, world * n, d).requires_grad_() for seed in (20, 21))
    unit = torch.nn.functional.normalize
    kw = {"impl": impl, "tile_size": 3}
    if loss == "nt_xent":
        fn = lambda a, b: nt_xent(a, b, 0.2, **kw)  # noqa: E731
        # rank r contributes its views in the order [z1_r, z2_r]
        pairs = zip(z1.split(n), z2.split(n), strict=True)
        providers = [unit(torch.cat([torch.cat(pair) for pair in pairs]), dim=1)]
    elif loss == "info_nce":
        fn = lambda a, b: info_nce(a, b, None, 0.2, **kw)  # noqa: E731
        providers = [unit(z2, dim=1)]
    else:
        scale = torch.tensor(4.0, dtype=torch.float64)
        fn = lambda a, b: clip_loss(a, b, scale, **kw)  # noqa: E731
        providers = [unit(z1, dim=1), unit(z2, dim=1)]
    expected = fn(z1, z2)
    expected_grads = torch.autograd.grad(expected, (z1, z2))
    total = 0.0
    for rank in range(world):
        rows = slice(rank * n, (rank + 1) * n)
        with monkeypatch.context() as patch:
            patch.setattr(distributed, "world_size", lambda: world)
            patch.setattr(distributed, "rank", lambda rank=rank: rank)
            patch.setattr(distributed, "gather", _fake_gather(rank, providers))
            total = total + fn(z1[rows], z2[rows])
    grads = torch.autograd.grad(total, (z1, z2))
    assert total.item() / world == pytest.approx(expected.item(), rel=1e-10)
    for got, want in zip(grads, expected_grads, strict=True):
        assert torch.allclose(got, world * want, rtol=1e-9, atol=1e-12)

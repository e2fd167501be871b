"""Gradient caching gives the full batch's gradient (single process; see tests/distributed/)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.methods.base import Method
from contrastkit.training.gradcache import (
    cached_step,
    check_gradient_cache,
    supports_gradient_cache,
)


def reference_nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """Dense NT-Xent written independently of contrastkit.losses: 2N anchors, self masked."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, targets)


class ToyContrastive(Method):
    """A two-view contrastive method with the gradient-caching interface."""

    supports_gradient_cache = True

    def __init__(self, *, dropout: float = 0.0, batch_norm: bool = False) -> None:
        layers = [nn.Linear(6, 16)]
        layers += [nn.BatchNorm1d(16)] if batch_norm else []
        layers += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 8)]
        backbone = nn.Sequential(*layers)
        backbone.feature_dim = 8
        super().__init__(backbone)
        self.scale = nn.Parameter(torch.tensor(2.0))  # a parameter used by the loss alone

    def embed_views(self, views: list[Tensor]) -> list[Tensor]:
        return [self.backbone(v) for v in views]

    def loss_from_embeddings(self, zs: list[Tensor]) -> dict[str, Tensor]:
        loss = reference_nt_xent(zs[0] * self.scale, zs[1], temperature=0.5)
        return {"loss": loss, "embedding": zs[0].detach()}

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        return self.loss_from_embeddings(self.embed_views(views))


class NoInterface(Method):
    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        return {"loss": self.backbone(views[0]).sum()}


def make_views(batch: int, seed: int = 0) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 6, generator=g), torch.randn(batch, 6, generator=g)]


def grads(method: nn.Module) -> dict[str, Tensor]:
    return {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}


def full_batch(method: Method, views: list[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    method.zero_grad()
    loss = method.training_step(views)["loss"]
    loss.backward()
    return loss.detach(), grads(method)


def assert_same_grads(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        # float32 sums in another order: entries near 0 differ by a few ulps of the largest one
        atol = max(1e-7, 1e-6 * float(b[name].abs().max()))
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=atol, msg=name)


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 10, 64])
def test_same_loss_and_gradient_as_the_full_batch(chunk_size: int) -> None:
    torch.manual_seed(0)
    method = ToyContrastive()
    views = make_views(10)
    loss, expected = full_batch(method, views)
    method.zero_grad()
    out = cached_step(method, views, chunk_size)
    assert not out["loss"].requires_grad
    torch.testing.assert_close(out["loss"], loss, rtol=1e-6, atol=0)
    assert "scale" in expected  # the loss-only parameter gets its gradient too
    assert_same_grads(grads(method), expected)


def test_the_batch_is_cut_into_near_equal_chunks() -> None:
    seen = []

    class Recording(ToyContrastive):
        def embed_views(self, views):
            seen.append(views[0].shape[0])
            return super().embed_views(views)

    cached_step(Recording(), make_views(9), 4)
    assert seen == [3, 3, 3] * 2  # not 4, 4, 1: no lone sample (BatchNorm needs 2)


def test_gradients_accumulate_like_backward() -> None:
    torch.manual_seed(0)
    method = ToyContrastive()
    views = make_views(8)
    _, once = full_batch(method, views)
    method.zero_grad()
    cached_step(method, views, 3)
    cached_step(method, views, 3)
    assert_same_grads(grads(method), {k: 2 * v for k, v in once.items()})


def test_dropout_is_replayed_with_each_chunks_rng_state() -> None:
    torch.manual_seed(0)
    method = ToyContrastive(dropout=0.5)
    views, chunk = make_views(9), 4  # ceil(9 / 4) = 3 chunks of 3 samples

    # reference: the same chunks embedded once each, with a graph, from the same RNG state
    torch.manual_seed(123)
    method.zero_grad()
    chunks = zip(*(v.tensor_split(3) for v in views), strict=True)
    pieces = [method.embed_views(list(c)) for c in chunks]
    zs = [torch.cat(column) for column in zip(*pieces, strict=True)]
    method.loss_from_embeddings(zs)["loss"].backward()
    expected, rng_after = grads(method), torch.get_rng_state()

    torch.manual_seed(123)
    method.zero_grad()
    cached_step(method, views, chunk)
    assert_same_grads(grads(method), expected)
    assert torch.equal(torch.get_rng_state(), rng_after)  # consumed as if each chunk ran once

    # without the replay the second pass would draw other masks and give another gradient
    torch.manual_seed(124)
    method.zero_grad()
    cached_step(method, views, chunk)
    assert not torch.allclose(grads(method)["backbone.0.weight"], expected["backbone.0.weight"])


def test_batch_norm_normalises_each_chunk_as_a_micro_batch() -> None:
    """With BatchNorm the cached gradient is that of chunk-normalised embeddings (documented)."""
    torch.manual_seed(0)
    method = ToyContrastive(batch_norm=True)
    views, chunk = make_views(12), 4
    _, full = full_batch(method, views)

    reference = ToyContrastive(batch_norm=True)
    reference.load_state_dict(method.state_dict())
    pieces = [reference.embed_views([v[i : i + chunk] for v in views]) for i in range(0, 12, chunk)]
    zs = [torch.cat(column) for column in zip(*pieces, strict=True)]
    reference.loss_from_embeddings(zs)["loss"].backward()

    bn = method.backbone[1]
    before = bn.num_batches_tracked.item()
    method.zero_grad()
    cached_step(method, views, chunk)
    assert_same_grads(grads(method), grads(reference))
    assert not torch.allclose(grads(method)["backbone.0.weight"], full["backbone.0.weight"])
    # running statistics: updated once per chunk (the no-graph pass is undone), as the reference
    assert bn.num_batches_tracked.item() == before + 3 * 2  # 3 chunks x 2 views
    torch.testing.assert_close(bn.running_mean, reference.backbone[1].running_mean)
    torch.testing.assert_close(bn.running_var, reference.backbone[1].running_var)


def test_custom_backward_and_autocast_hooks_are_used() -> None:
    torch.manual_seed(0)
    method = ToyContrastive()
    views = make_views(6)
    _, expected = full_batch(method, views)
    entered = []

    class Recording:
        def __enter__(self):
            entered.append(1)

        def __exit__(self, *exc):
            return False

    method.zero_grad()
    cached_step(method, views, 4, backward=lambda loss: (3 * loss).backward(), autocast=Recording)
    assert_same_grads(grads(method), {k: 3 * v for k, v in expected.items()})
    assert len(entered) == 2 + 1 + 2  # two chunks embedded twice, one loss


def test_supports_gradient_cache() -> None:
    assert supports_gradient_cache(ToyContrastive())
    backbone = nn.Linear(6, 8)
    assert not supports_gradient_cache(NoInterface(backbone))
    assert supports_gradient_cache(ToyContrastive) and not supports_gradient_cache(NoInterface)


def test_cached_step_returns_the_state_entries_for_after_step() -> None:
    class WithState(ToyContrastive):
        def loss_from_embeddings(self, zs: list[Tensor]) -> dict[str, Tensor]:
            return {**super().loss_from_embeddings(zs), "state/rows": zs[1].sum(1)}

    method, views = WithState(), make_views(6)
    out = cached_step(method, views, 4)
    expected = method.training_step(views)["state/rows"]
    torch.testing.assert_close(out["state/rows"], expected.detach())
    assert not out["state/rows"].requires_grad


@pytest.mark.parametrize("chunk_size", [0, -4, 2.5, True, None])
def test_bad_chunk_size(chunk_size) -> None:
    with pytest.raises(ValueError, match=r"chunk_size must be a positive integer, got"):
        check_gradient_cache(ToyContrastive(), chunk_size)


def test_method_without_the_interface_names_the_methods_that_have_it() -> None:
    with pytest.raises(ValueError, match=r"--chunk-size works with contrastive methods: .*simclr"):
        cached_step(NoInterface(nn.Linear(6, 8)), make_views(4), 2)


def test_views_with_different_batch_sizes() -> None:
    views = [torch.randn(4, 6), torch.randn(5, 6)]
    with pytest.raises(ValueError, match=r"views must share their batch size B, got shapes"):
        cached_step(ToyContrastive(), views, 2)


def simclr() -> Method:
    from contrastkit.methods import SimCLR
    from contrastkit.models.backbones import build_backbone

    backbone = build_backbone("mlp", input_dim=6, hidden_dims=[16])  # no BatchNorm
    return SimCLR(backbone, hidden_dim=16, out_dim=8, projector_layers=1, temperature=0.5)


def clip() -> Method:
    from contrastkit.methods import CLIP
    from contrastkit.models.backbones import build_backbone

    backbone = build_backbone("mlp", input_dim=6, hidden_dims=[16])
    vocab = ["a", "red", "blue", "star", "circle"]
    return CLIP(
        backbone,
        vocab=vocab,
        context_length=6,
        embed_dim=8,
        text_width=16,
        text_depth=1,
        text_heads=2,
    )


def clip_views(batch: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(batch, 6, generator=g), torch.randint(0, 7, (batch, 6), generator=g)]


@pytest.mark.parametrize(
    ("build", "views"), [(simclr, make_views(10)), (clip, clip_views(10))], ids=["simclr", "clip"]
)
def test_contrastive_methods_get_the_full_batch_gradient(build, views) -> None:
    torch.manual_seed(0)
    method = build()
    loss, expected = full_batch(method, views)
    method.zero_grad()
    out = cached_step(method, views, 4)
    torch.testing.assert_close(out["loss"], loss, rtol=1e-5, atol=0)
    assert_same_grads(grads(method), expected)
    if "log_logit_scale" in expected:  # CLIP's temperature is learned through the loss alone
        assert expected["log_logit_scale"].abs() > 0

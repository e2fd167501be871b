"""Heads: the builders, shapes, paper-default parameter counts, DINO's normalised last layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.models.heads import DINOHead, ProjectionHead, mlp, mlp_head


def count(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@pytest.fixture
def skip_init(monkeypatch):
    """Build paper-sized heads quickly: leave their weights uninitialised (only counted)."""
    monkeypatch.setattr(nn.Linear, "reset_parameters", lambda self: None)
    monkeypatch.setattr(nn.init, "trunc_normal_", lambda tensor, **kw: tensor)


def test_mlp_structure():
    net = mlp([6, 10, 8, 3])
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear]
    assert net[0].bias is None and net[-1].bias is not None  # BN replaces the hidden biases
    plain = mlp([6, 10, 3], batch_norm=False, last_bias=False, activation=nn.GELU)
    assert [type(m) for m in plain] == [nn.Linear, nn.GELU, nn.Linear]
    assert plain[0].bias is not None and plain[-1].bias is None
    ending = mlp([6, 3], last_batch_norm=True)
    assert isinstance(ending[-1], nn.BatchNorm1d) and not ending[-1].affine
    assert net(torch.randn(5, 6)).shape == (5, 3)


@pytest.mark.parametrize("dims", [[4], [], [4, 0], [4, 2.5]])
def test_mlp_rejects_bad_dims(dims):
    with pytest.raises(ValueError, match="dims must hold at least two positive ints"):
        mlp(dims)


def test_projection_and_prediction_heads():
    assert ProjectionHead(32, 64, 16)(torch.randn(4, 32)).shape == (4, 16)
    assert ProjectionHead(32, 64, 16, num_layers=3)(torch.randn(4, 32)).shape == (4, 16)
    assert mlp_head(16, 8, 16)(torch.randn(4, 16)).shape == (4, 16)  # a predictor
    with pytest.raises(ValueError, match="num_layers must be an int >= 1"):
        ProjectionHead(32, num_layers=0)
    with pytest.raises(ValueError, match="num_layers must be an int >= 1"):
        mlp_head(32, 8, 4, num_layers=2.0)


def test_default_parameter_counts(skip_init):
    # paper sizes. SimCLR on ResNet-50: 2048 -> 2048 (no bias, BN) -> 128
    assert count(ProjectionHead(2048)) == 2048 * 2048 + 2 * 2048 + 2048 * 128 + 128
    # BYOL predictor: 256 -> 4096 (BN) -> 256
    assert count(mlp_head(256, 4096, 256)) == 256 * 4096 + 2 * 4096 + 4096 * 256 + 256
    # Barlow Twins / VICReg projector on ResNet-50: 2048 -> 8192 -> 8192 -> 8192
    expected = 2048 * 8192 + 2 * 8192 + 8192 * 8192 + 2 * 8192 + 8192 * 8192
    assert count(mlp_head(2048, 8192, 8192, num_layers=3, last_bias=False)) == expected


def test_mlp_head_builds_the_dims_list_of_its_layers():
    net = mlp_head(12, 16, 8, num_layers=3, last_bias=False)  # Barlow Twins / VICReg
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 16), (16, 16), (16, 8)]
    assert net(torch.randn(3, 12)).shape == (3, 8)
    assert net[-1].bias is None
    assert [type(m) for m in mlp_head(12, 16, 8, num_layers=1)] == [nn.Linear]
    ending = mlp_head(12, 16, 8, last_batch_norm=True)  # SimSiam / MoCo v3
    assert isinstance(ending[-1], nn.BatchNorm1d) and not ending[-1].affine


def test_dino_head_default_parameter_count(skip_init):
    head = DINOHead(384)  # ViT-S/16
    mlp_params = 384 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 256 + 256
    assert count(head) == mlp_params + 65536 + 65536 * 256  # + weight-norm g and v
    assert count(head, trainable_only=True) == mlp_params + 65536 * 256  # g is frozen at 1


def test_dino_head_normalised_prototypes():
    head = DINOHead(10, hidden_dim=12, bottleneck_dim=6, out_dim=20)
    with torch.no_grad():
        head.last_layer.parametrizations.weight.original1.mul_(7.0)  # v's scale must not matter
    norms = head.last_layer.weight.norm(dim=1)
    assert torch.allclose(norms, torch.ones(20), atol=1e-6)
    out = head(torch.randn(5, 10))
    assert out.shape == (5, 20)
    assert out.abs().max() <= 1 + 1e-5  # unit bottleneck against unit prototypes: cosines

    free = DINOHead(10, hidden_dim=12, bottleneck_dim=6, out_dim=20, norm_last_layer=False)
    assert free.last_layer.parametrizations.weight.original0.requires_grad
    single = DINOHead(10, bottleneck_dim=6, out_dim=20, num_layers=1)
    assert [type(m) for m in single.mlp] == [nn.Linear]


def test_dino_head_batch_norm_option_normalises_the_hidden_layers():
    plain = DINOHead(10, hidden_dim=12, bottleneck_dim=6, out_dim=20)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())
    head = DINOHead(10, hidden_dim=12, bottleneck_dim=6, out_dim=20, batch_norm=True)
    norms = [m for m in head.mlp if isinstance(m, torch.nn.BatchNorm1d)]
    assert [n.num_features for n in norms] == [12, 12]  # after both hidden layers, not the last
    assert head(torch.randn(8, 10)).shape == (8, 20)

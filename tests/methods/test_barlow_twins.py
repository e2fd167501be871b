"""Barlow Twins: 3-layer projector, one step trains it."""

import pytest
import torch
from method_testing import changed, optimizer_step, random_views, snapshot, tiny_cnn

from contrastkit.losses import barlow_twins_loss
from contrastkit.methods.barlow_twins import BarlowTwins


def test_barlow_twins_step():
    method = BarlowTwins(tiny_cnn(), hidden_dim=16, out_dim=16)
    before = {n: snapshot(getattr(method, n)) for n in ("backbone", "projector")}
    out = optimizer_step(method, random_views())
    assert torch.isfinite(out["loss"]) and out["embedding"].shape == (8, 16)
    for name, snap in before.items():
        assert changed(snap, getattr(method, name)), name


def test_barlow_twins_loss_is_the_losss_of_the_projections():
    method = BarlowTwins(tiny_cnn(), hidden_dim=16, out_dim=16, lambda_offdiag=0.01).eval()
    x1, x2 = random_views()
    out = method.training_step([x1, x2])
    with torch.no_grad():
        z1, z2 = (method.projector(method.backbone(x)) for x in (x1, x2))
    torch.testing.assert_close(out["loss"].detach(), barlow_twins_loss(z1, z2, 0.01))


def test_barlow_twins_defaults_are_the_papers():
    with torch.device("meta"):  # paper-sized heads, without allocating them
        method = BarlowTwins(tiny_cnn())
    linears = [m for m in method.projector.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [8192, 8192, 8192]
    assert method.lambda_offdiag == 5e-3
    with pytest.raises(ValueError, match="lambda_offdiag"):
        BarlowTwins(tiny_cnn(), lambda_offdiag=-1)

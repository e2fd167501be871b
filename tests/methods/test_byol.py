"""BYOL: predictor, EMA target with a cosine-scheduled momentum, symmetric loss."""

import pytest
import torch
import torch.nn.functional as F
from method_testing import changed, optimizer_step, random_views, snapshot, tiny_cnn, trainable_ids

from contrastkit.methods.byol import BYOL
from contrastkit.models.momentum import cosine_momentum


def _byol() -> BYOL:
    return BYOL(tiny_cnn(), hidden_dim=16, out_dim=8)


def test_byol_step_trains_online_not_target():
    method = _byol()
    method.setup(total_steps=100, steps_per_epoch=10)
    online = {name: snapshot(getattr(method, name)) for name in ("backbone", "projector")}
    predictor = snapshot(method.predictor)
    target, target_projector = snapshot(method.target_backbone), snapshot(method.target_projector)
    out = optimizer_step(method, random_views())
    assert torch.isfinite(out["loss"]) and 0 <= float(out["loss"].detach()) <= 8
    assert changed(online["backbone"], method.backbone)
    assert changed(online["projector"], method.projector)
    assert changed(predictor, method.predictor)
    frozen = [*method.target_backbone.parameters(), *method.target_projector.parameters()]
    assert all(p.grad is None and not p.requires_grad for p in frozen)
    assert not {id(p) for p in frozen} & trainable_ids(method)
    assert not changed(target, method.target_backbone)
    assert not changed(target_projector, method.target_projector)


@pytest.mark.parametrize("step", [0, 50, 100])
def test_target_follows_the_ema_formula(step):
    method = _byol()
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(0.5)
        method.backbone(torch.rand(8, 3, 16, 16))  # move BatchNorm statistics
    before = snapshot(method.target_backbone)
    method.after_step(step, 100, {})
    m = cosine_momentum(step, 100, 0.996)
    assert m == pytest.approx({0: 0.996, 50: 0.998, 100: 1.0}[step])
    online = dict(method.backbone.named_parameters())
    for name, p in method.target_backbone.named_parameters():
        torch.testing.assert_close(p, m * before[name] + (1 - m) * online[name])
    for name, b in method.target_backbone.named_buffers():
        assert torch.equal(b, dict(method.backbone.named_buffers())[name])


def test_byol_loss_matches_formula_and_is_symmetric():
    method = _byol().eval()
    x1, x2 = random_views()
    loss = method.training_step([x1, x2])["loss"].detach()
    swapped = method.training_step([x2, x1])["loss"].detach()
    with torch.no_grad():
        p = [method.predictor(method.projector(method.backbone(x))) for x in (x1, x2)]
        t = [method.target_projector(method.target_backbone(x)) for x in (x1, x2)]
        expected = sum(
            (2 - 2 * F.cosine_similarity(p[i], t[1 - i], dim=1)).mean() for i in range(2)
        )
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(loss, swapped)


def test_byol_defaults_and_recipe():
    with torch.device("meta"):
        method = BYOL(tiny_cnn())
    assert method.view_recipe == "asymmetric_pair"
    assert method.base_momentum == 0.996
    linears = [m for m in method.predictor.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 4096), (4096, 256)]


def test_byol_without_predictor_matches_the_projections_directly():
    # the ablation of ``contrastkit experiment collapse``: q is the identity, nothing to train
    method = BYOL(tiny_cnn(), hidden_dim=16, out_dim=8, predictor=False).eval()
    assert isinstance(method.predictor, torch.nn.Identity) and not method.use_predictor
    assert not list(method.predictor.parameters())
    x1, x2 = random_views()
    loss = method.training_step([x1, x2])["loss"].detach()
    with torch.no_grad():
        z = [method.projector(method.backbone(x)) for x in (x1, x2)]
        t = [method.target_projector(method.target_backbone(x)) for x in (x1, x2)]
        expected = sum((2 - 2 * F.cosine_similarity(z[i], t[1 - i], dim=1)).mean() for i in (0, 1))
    torch.testing.assert_close(loss, expected)

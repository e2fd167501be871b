"""DINO: multi-crop through student and teacher, center, temperature schedule, frozen layer."""

import pytest
import torch
from method_testing import changed, optimizer_step, snapshot, tiny_cnn, trainable_ids

from contrastkit.methods.dino import DINO
from contrastkit.models.momentum import cosine_momentum

B = 4


def _dino(**options) -> DINO:
    options = {"out_dim": 32, "hidden_dim": 16, "bottleneck_dim": 8, **options}
    return DINO(tiny_cnn(), **options)


def _multicrop(n_local: int = 3, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    globals_ = [torch.rand(B, 3, 16, 16, generator=g) for _ in range(2)]
    return globals_ + [torch.rand(B, 3, 8, 8, generator=g) for _ in range(n_local)]


def test_dino_step_trains_student_not_teacher():
    method = _dino(freeze_last_layer=0)
    method.setup(total_steps=20, steps_per_epoch=5)
    backbone, head = snapshot(method.backbone), snapshot(method.head)
    teacher = snapshot(method.teacher_backbone)
    teacher_head = snapshot(method.teacher_head)
    out = optimizer_step(method, _multicrop())
    assert torch.isfinite(out["loss"])
    assert out["embedding"].shape == (B, 8)
    assert changed(backbone, method.backbone) and changed(head, method.head)
    assert not changed(teacher, method.teacher_backbone)
    assert not changed(teacher_head, method.teacher_head)
    frozen = [*method.teacher_backbone.parameters(), *method.teacher_head.parameters()]
    assert all(p.grad is None and not p.requires_grad for p in frozen)
    assert not {id(p) for p in frozen} & trainable_ids(method)
    online = dict(method.backbone.named_parameters())
    method.after_step(0, 20, out)
    m = cosine_momentum(0, 20, 0.996)
    for name, p in method.teacher_backbone.named_parameters():
        torch.testing.assert_close(p, m * teacher[name] + (1 - m) * online[name])


def test_all_views_reach_the_student_only_globals_the_teacher():
    method = _dino()
    method.setup(total_steps=20, steps_per_epoch=5)
    seen = {"student": [], "teacher": []}
    method.backbone.register_forward_hook(lambda m, i, o: seen["student"].append(i[0].shape))
    method.teacher_backbone.register_forward_hook(
        lambda m, i, o: seen["teacher"].append(i[0].shape)
    )
    method.training_step(_multicrop(n_local=3))
    # one pass per crop size: 2 globals together, then the 3 locals together
    assert seen["student"] == [(2 * B, 3, 16, 16), (3 * B, 3, 8, 8)]
    assert seen["teacher"] == [(2 * B, 3, 16, 16)]


def test_center_moves_as_an_ema_of_the_teacher_mean():
    method = _dino()
    method.setup(total_steps=20, steps_per_epoch=5)
    with torch.no_grad():
        method.center.uniform_(-1, 1)
    center = method.center.clone()
    views = _multicrop()
    out = method.training_step(views)
    with torch.no_grad():
        teacher = method.teacher_head(method.teacher_backbone(torch.cat(views[:2])))
    method.after_step(0, 20, out)
    expected = center * 0.9 + teacher.mean(0) * 0.1
    torch.testing.assert_close(method.center, expected, rtol=1e-5, atol=1e-6)


def test_a_second_training_step_updates_the_center_once_from_its_own_outputs():
    method = _dino()
    method.setup(total_steps=20, steps_per_epoch=5)
    center = method.center.clone()
    method.training_step(_multicrop(seed=3))  # e.g. a validation pass: no state is kept
    torch.testing.assert_close(method.center, center)
    out = method.training_step(_multicrop(seed=4))
    method.after_step(0, 20, out)
    expected = center * 0.9 + out["state/center"] * 0.1
    torch.testing.assert_close(method.center, expected)
    method.after_step(1, 20, {})  # no outputs of a step: the teacher moves, the center stays
    torch.testing.assert_close(method.center, expected)


def test_teacher_temperature_warms_up_linearly_over_epochs():
    method = _dino(warmup_teacher_temp_epochs=2)
    method.setup(total_steps=100, steps_per_epoch=10)  # warm-up = 20 steps
    assert method.teacher_temperature(0) == pytest.approx(0.04)
    assert method.teacher_temperature(10) == pytest.approx(0.055)
    assert method.teacher_temperature(20) == pytest.approx(0.07)
    assert method.teacher_temperature(99) == pytest.approx(0.07)
    # the logged value follows the steps taken
    for step in range(10):
        method.after_step(step, 100, {})
    out = method.training_step(_multicrop())
    assert float(out["teacher_temp"]) == pytest.approx(0.055)


def test_last_layer_is_frozen_during_the_first_epoch():
    method = _dino(freeze_last_layer=1)
    method.setup(total_steps=20, steps_per_epoch=3)
    last = list(method.head.last_layer.parameters())
    trainable_last = [p for p in last if p.requires_grad]
    assert trainable_last
    for step in range(4):
        before = [p.detach().clone() for p in trainable_last]
        out = optimizer_step(method, _multicrop(seed=step), step=step)
        moved = any(not torch.equal(b, p) for b, p in zip(before, trainable_last, strict=True))
        frozen = step < 3
        assert moved != frozen, f"step {step}"
        assert all((p.grad is None) == frozen for p in trainable_last)
        method.after_step(step, 20, out)


def test_dino_defaults_are_the_papers():
    with torch.device("meta"):  # paper-sized heads, without allocating them
        method = DINO(tiny_cnn())
    assert method.center.shape == (65536,)
    assert DINO.default_clip_grad == 3.0
    assert method.view_recipe == "multicrop"
    assert (method.base_momentum, method.center_momentum, method.student_temp) == (
        0.996,
        0.9,
        0.1,
    )
    assert (method.warmup_teacher_temp, method.teacher_temp) == (0.04, 0.07)
    assert method.warmup_teacher_temp_epochs == 30 and method.freeze_last_layer == 1


def test_dino_rejects_bad_views_and_options():
    method = _dino()
    method.setup(total_steps=20, steps_per_epoch=5)
    with pytest.raises(ValueError, match="global crops"):
        method.training_step(_multicrop()[:1])
    crops = _multicrop()
    with pytest.raises(ValueError, match="share one shape"):
        method.training_step([crops[0], crops[2], crops[3]])
    with pytest.raises(ValueError, match="teacher_temp"):
        _dino(teacher_temp=0)
    with pytest.raises(ValueError, match="center_momentum"):
        _dino(center_momentum=2)

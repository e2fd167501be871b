"""MoCo v2 (queue) and v3 (in-batch keys, predictor, cosine momentum)."""

import pytest
import torch
import torch.nn.functional as F
from method_testing import changed, optimizer_step, random_views, snapshot, tiny_cnn, trainable_ids

from contrastkit.methods.moco import MoCo, MoCoV3
from contrastkit.models.momentum import cosine_momentum


def _moco(**options) -> MoCo:
    return MoCo(tiny_cnn(), queue_size=32, hidden_dim=16, out_dim=8, **options)


def test_moco_step_trains_query_side_only():
    method = _moco()
    backbone, projector = snapshot(method.backbone), snapshot(method.projector)
    key_bb, key_proj = snapshot(method.key_backbone), snapshot(method.key_projector)
    out = optimizer_step(method, random_views())
    assert torch.isfinite(out["loss"])
    assert out["embedding"].shape == (8, 8) and not out["embedding"].requires_grad
    assert changed(backbone, method.backbone) and changed(projector, method.projector)
    # the key encoder gets no gradient and is not optimised
    assert not changed(key_bb, method.key_backbone) and not changed(key_proj, method.key_projector)
    keys = list(method.key_backbone.parameters()) + list(method.key_projector.parameters())
    assert all(p.grad is None and not p.requires_grad for p in keys)
    assert not {id(p) for p in keys} & trainable_ids(method)
    # after_step moves it by EMA: k <- 0.999 k + 0.001 q
    online_now = dict(method.backbone.named_parameters())
    method.after_step(0, 10, out)
    for name, p in method.key_backbone.named_parameters():
        expected = 0.999 * key_bb[name] + 0.001 * online_now[name]
        torch.testing.assert_close(p, expected, rtol=1e-5, atol=1e-6)


def test_moco_loss_uses_only_the_queue_as_negatives():
    method = _moco().eval()  # eval: BatchNorm is deterministic, so we can recompute
    x1, x2 = random_views()
    out = method.training_step([x1, x2])
    with torch.no_grad():
        q = F.normalize(method.projector(method.backbone(x1)), dim=1)
        k = F.normalize(method.key_projector(method.key_backbone(x2)), dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ method.queue.T], 1) / 0.2
        expected = F.cross_entropy(logits, torch.zeros(8, dtype=torch.long))
    torch.testing.assert_close(out["loss"].detach(), expected)


def test_queue_enqueues_in_order_and_wraps():
    method = _moco()  # queue 32, batch 8: four steps fill it
    initial = method.queue.clone()
    enqueued = []
    for step in range(5):
        views = random_views(seed=step)
        out = method.training_step(views)
        enqueued.append(out["state/keys"].clone())
        method.after_step(step, 10, out)
        assert int(method.queue_ptr) == (step + 1) * 8 % 32
    # steps 1-3 fill slots 8..31 in order; step 4 wrapped around over step 0's slots
    torch.testing.assert_close(method.queue[0:8], enqueued[4])
    for step in (1, 2, 3):
        torch.testing.assert_close(method.queue[step * 8 : step * 8 + 8], enqueued[step])
    assert not torch.equal(method.queue, initial)
    assert torch.allclose(method.queue.norm(dim=1), torch.ones(32))


def test_symmetric_moco_enqueues_both_views():
    method = _moco(symmetric=True)
    out = method.training_step(random_views())
    assert out["state/keys"].shape == (16, 8)
    method.after_step(0, 10, out)
    assert int(method.queue_ptr) == 16


def test_a_second_training_step_enqueues_nothing_until_after_step():
    method = _moco()
    method.training_step(random_views(seed=7))  # e.g. a validation pass: no state is kept
    out = method.training_step(random_views(seed=8))
    assert int(method.queue_ptr) == 0
    method.after_step(0, 10, out)
    assert int(method.queue_ptr) == 8  # one batch of keys, enqueued once
    torch.testing.assert_close(method.queue[:8], out["state/keys"])


@pytest.mark.parametrize(
    ("queue_size", "batch", "match"),
    [
        (30, 8, r"queue_size 30 is not a multiple of the 8 keys.*queue_size=24"),
        (4, 8, r"queue_size 4 is smaller than the 8 keys.*queue_size=8"),
    ],
)
def test_queue_that_does_not_fit_the_batch_is_refused(queue_size, batch, match):
    method = MoCo(tiny_cnn(), queue_size=queue_size, hidden_dim=16, out_dim=8)
    with pytest.raises(ValueError, match=match):
        method.training_step(random_views(batch=batch))


def test_queue_larger_than_the_dataset_is_refused():
    with pytest.raises(ValueError, match=r"queue_size 65536 is larger than the 1000 training"):
        MoCo(tiny_cnn(), num_samples=1000)
    assert MoCo.options_from_data(list(range(1000))) == {"num_samples": 1000}


def test_moco_defaults_are_the_papers():
    with torch.device("meta"):  # paper-sized queue, without allocating it
        method = MoCo(tiny_cnn())
    assert method.queue.shape == (65536, 128)
    assert (method.momentum, method.temperature) == (0.999, 0.2)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in method.projector.modules())


def test_mocov3_step_and_cosine_momentum():
    torch.manual_seed(0)
    method = MoCoV3(tiny_cnn(), hidden_dim=16, out_dim=8)
    method.setup(total_steps=10, steps_per_epoch=5)
    key_bb = snapshot(method.key_backbone)
    trained = snapshot(method.predictor)
    out = optimizer_step(method, random_views())
    assert torch.isfinite(out["loss"]) and float(out["momentum"]) == pytest.approx(0.99)
    assert changed(trained, method.predictor)
    assert not changed(key_bb, method.key_backbone)
    assert all(p.grad is None for p in method.key_backbone.parameters())
    online = dict(method.backbone.named_parameters())
    method.after_step(4, 10, out)
    m = cosine_momentum(4, 10, 0.99)
    for name, p in method.key_backbone.named_parameters():
        torch.testing.assert_close(p, m * key_bb[name] + (1 - m) * online[name])
    assert int(method.steps_done) == 5
    out = method.training_step(random_views())
    assert float(out["momentum"]) == pytest.approx(cosine_momentum(5, 10, 0.99))


def test_mocov3_loss_is_symmetrised_and_scaled():
    torch.manual_seed(0)
    method = MoCoV3(tiny_cnn(), hidden_dim=16, out_dim=8, temperature=0.2).eval()
    x1, x2 = random_views()
    out = method.training_step([x1, x2])
    with torch.no_grad():

        def ctr(q, k):
            q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
            return F.cross_entropy(q @ k.T / 0.2, torch.arange(8)) * 2 * 0.2

        q1 = method.predictor(method.projector(method.backbone(x1)))
        q2 = method.predictor(method.projector(method.backbone(x2)))
        k1 = method.key_projector(method.key_backbone(x1))
        k2 = method.key_projector(method.key_backbone(x2))
        expected = ctr(q1, k2) + ctr(q2, k1)
    torch.testing.assert_close(out["loss"].detach(), expected)


def test_moco_rejects_bad_views_and_options():
    method = _moco()
    with pytest.raises(ValueError, match="list of 2 tensors"):
        method.training_step(random_views(3))
    with pytest.raises(ValueError, match="temperature"):
        MoCo(tiny_cnn(), temperature=0)
    with pytest.raises(ValueError, match="momentum"):
        MoCoV3(tiny_cnn(), momentum=1.5)

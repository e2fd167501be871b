"""SimSiam: predictor, stop-gradient, fixed predictor learning rate; collapse without it."""

import json

import pytest
import torch
from method_testing import changed, optimizer_step, random_views, snapshot, tiny_cnn

from contrastkit.methods.simsiam import SimSiam


def _simsiam(**options) -> SimSiam:
    return SimSiam(tiny_cnn(), hidden_dim=16, out_dim=16, pred_hidden_dim=4, **options)


def test_simsiam_step_trains_everything():
    method = _simsiam()
    parts = {
        name: snapshot(getattr(method, name)) for name in ("backbone", "projector", "predictor")
    }
    out = optimizer_step(method, random_views())
    assert torch.isfinite(out["loss"]) and -1 <= float(out["loss"].detach()) <= 1
    for name, before in parts.items():
        assert changed(before, getattr(method, name)), name


def test_predictor_group_has_a_fixed_learning_rate():
    method = _simsiam()
    groups = method.parameter_groups()
    assert [g.get("fixed_lr", False) for g in groups] == [False, True]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in method.predictor.parameters()}
    all_ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(all_ids) == sorted(id(p) for p in method.parameters())


def test_stop_gradient_changes_the_gradient_not_the_loss():
    x = random_views()
    grads, losses = {}, {}
    for stop in (True, False):
        method = _simsiam(stop_gradient=stop).eval()
        loss = method.training_step(x)["loss"]
        loss.backward()
        losses[stop] = loss.detach()
        grads[stop] = torch.cat([p.grad.flatten() for p in method.projector.parameters()])
    torch.testing.assert_close(losses[True], losses[False])
    assert not torch.allclose(grads[True], grads[False])


def test_simsiam_defaults_are_the_papers():
    with torch.device("meta"):
        method = SimSiam(tiny_cnn())
    linears = [m for m in method.predictor.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 512), (512, 2048)]
    assert len([m for m in method.projector.modules() if isinstance(m, torch.nn.Linear)]) == 3
    assert method.stop_gradient


@pytest.mark.slow
def test_collapse_monitor_sees_simsiam_collapse_without_stop_gradient(tmp_path, caplog):
    from contrastkit.training.trainer import TrainConfig, train

    def run(stop_gradient: bool) -> list[dict]:
        config = TrainConfig(
            method="simsiam",
            data="digits",
            steps=30,
            batch_size=32,
            lr=0.03,
            warmup_steps=0,
            backbone="cnn",
            backbone_options={"width": 8},
            method_options={
                "hidden_dim": 64,
                "out_dim": 64,
                "pred_hidden_dim": 16,
                "projector_layers": 2,
                "last_batch_norm": False,
                "stop_gradient": stop_gradient,
            },
            log_every=5,
            checkpoint_every=30,
            eval=False,
            progress=False,
            out=str(tmp_path / f"stop-{stop_gradient}"),
        )
        run_dir = train(config)
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if r.get("event") == "step"]

    caplog.set_level("WARNING", logger="contrastkit.training.monitor")
    healthy = run(True)
    assert "collapsed" not in caplog.text
    collapsed = run(False)
    assert "representation collaps" in caplog.text  # collapsed, or collapsing from its start
    ref = healthy[-1]["embedding_std_ref"]
    assert collapsed[-1]["embedding_std"] < 0.1 * ref < healthy[-1]["embedding_std"]
    assert collapsed[-1]["loss"] < healthy[-1]["loss"]  # the trivial solution reaches -1

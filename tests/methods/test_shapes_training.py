"""Methods trained briefly on ``shapes`` by README's command learn the shape: kNN beats random init.

The command is README's (``contrastkit train --config configs/<method>-shapes.toml`` with the
brief budget below). The trained backbone's h of the 1,000 held-out scenes is classified by
weighted kNN (k = 20) against the 4,000 training scenes and compared with the same backbone at
its seeded random initialisation (the trainer seeds it, so it is the same network for every
method). ``benchmarks/methods.py`` measures all eight methods on this budget (README, "Comparing
the methods"); every one of them is asserted here.
"""

from pathlib import Path

import pytest

from contrastkit.cli import main
from contrastkit.data import build_dataset
from contrastkit.evaluation import metrics as ev
from contrastkit.training.runs import build_method, load_run

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
BRIEF = ["--steps", "600", "--batch-size", "64", "--set", "backbone.width=16"]
METHODS = ["simclr", "moco", "mocov3", "byol", "simsiam", "dino", "barlow_twins", "vicreg"]
MARGIN = 0.03  # about 2 standard errors of an accuracy on 1,000 scenes


@pytest.fixture(scope="module")
def shapes():
    return build_dataset("shapes", train=True), build_dataset("shapes", train=False)


def _knn(encoder, shapes) -> float:
    train_ds, test_ds = shapes
    train_f, train_y = ev.embed_dataset(encoder, train_ds, 500, "cpu")
    test_f, test_y = ev.embed_dataset(encoder, test_ds, 500, "cpu")
    return ev.knn_accuracy(train_f, train_y, test_f, test_y)


@pytest.mark.parametrize("method", METHODS)
def test_brief_training_beats_random_init_knn(method, shapes, tmp_path):
    out = tmp_path / method
    argv = ["train", "--config", str(CONFIGS / f"{method}-shapes.toml"), *BRIEF]
    assert main([*argv, "--no-eval", "--quiet", "--out", str(out)]) == 0
    trained, config = load_run(out)
    assert (config.method, config.steps, config.view_pipeline) == (method, 600, "batched")
    random_init = build_method(config).eval()
    accuracy, baseline = _knn(trained, shapes), _knn(random_init, shapes)
    assert accuracy > baseline + MARGIN, (method, accuracy, baseline)

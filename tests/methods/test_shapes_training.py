"""README's per-method ``shapes`` recipes train through the CLI: finite losses, weights that move.

The command is README's (``contrastkit train --method <method> --data shapes``, which picks the
built-in ``<method>-shapes`` recipe) with a budget of a few steps. What is checked is behaviour,
deterministically: the run exits 0 with the recipe's settings and the batched view pipeline,
every logged loss is finite, and the trained backbone differs from the same backbone at its
seeded random initialisation while giving finite (B, F) features. How much each recipe learns is
a quality question with machine-to-machine variation; ``benchmarks/methods.py`` measures it
(docs/methods.md).
"""

import json
import math

import pytest
import torch

from contrastkit.cli import main
from contrastkit.data import build_dataset
from contrastkit.training.runs import build_method, load_run

pytestmark = pytest.mark.slow

STEPS = 6
BRIEF = ["--steps", str(STEPS), "--batch-size", "16", "--set", "backbone.width=8"]
METHODS = ["simclr", "moco", "mocov3", "byol", "simsiam", "dino", "barlow_twins", "vicreg"]


@pytest.mark.parametrize("method", METHODS)
def test_recipe_trains_and_moves_the_backbone(method, tmp_path):
    out = tmp_path / method
    argv = ["train", "--method", method, "--data", "shapes", *BRIEF]
    assert main([*argv, "--no-eval", "--quiet", "--out", str(out)]) == 0
    trained, config = load_run(out)
    assert (config.method, config.steps, config.view_pipeline) == (method, STEPS, "batched")
    assert config.recipe == f"{method}-shapes"

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses and all(math.isfinite(loss) for loss in losses)

    random_init = build_method(config).eval()
    pairs = zip(trained.backbone.parameters(), random_init.backbone.parameters(), strict=True)
    moved = [not torch.equal(a, b) for a, b in pairs]
    assert any(moved)
    images = torch.stack([build_dataset("shapes", train=False)[i][0] for i in range(4)])
    with torch.no_grad():
        features = trained.embed(images)
    assert features.shape == (4, trained.backbone.feature_dim)
    assert torch.isfinite(features).all()

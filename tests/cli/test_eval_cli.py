import json

import numpy as np
import pytest

from contrastkit.cli import main
from contrastkit.training.runs import load_run

pytestmark = pytest.mark.slow


def test_eval_reproduces_the_summary(toy_run, capsys):
    before = json.loads((toy_run / "summary.json").read_text())["eval"]
    assert main(["eval", str(toy_run)]) == 0
    out = capsys.readouterr().out
    assert "kNN accuracy (k=20)" in out and "separation gap" in out
    after = json.loads((toy_run / "summary.json").read_text())["eval"]
    for encoder in ("raw", "random_init", "trained"):
        before[encoder].pop("eval_seconds", None)
        assert after[encoder] == pytest.approx(before[encoder])


def test_embed_writes_h_and_labels(toy_run, tmp_path, capsys):
    out = tmp_path / "h.npy"
    assert main(["embed", str(toy_run), "--data", "toy", "--out", str(out)]) == 0
    h, labels = np.load(out), np.load(tmp_path / "h.labels.npy")
    width = json.loads((toy_run / "config.json").read_text())["backbone_options"]["hidden_dims"][-1]
    assert h.shape == (100, width) and h.dtype == np.float32 and labels.shape == (100,)
    method, _ = load_run(toy_run)

    from contrastkit.data import build_dataset

    test = build_dataset("toy", train=False)
    assert np.allclose(h, method.embed(test.points).detach().numpy(), atol=1e-6)
    # an existing file is kept unless --overwrite says otherwise
    out.write_bytes(b"mine")
    assert main(["embed", str(toy_run), "--data", "toy", "--out", str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"mine"
    assert main(["embed", str(toy_run), "--data", "toy", "--out", str(out), "--overwrite"]) == 0
    assert np.load(out).shape == (100, width)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["embed", "{run}", "--data", "digits", "--out", "{tmp}/h.npy"], "shape"),
        (["embed", "{run}", "--data", "toy", "--out", "{tmp}/h.txt"], ".npy"),
        (["embed", "{run}", "--data", "toy", "--out", "{tmp}/no/h.npy"], "does not exist"),
        (["eval", "{tmp}"], "not a contrastkit run"),
    ],
)
def test_bad_input(toy_run, tmp_path, capsys, argv, message):
    argv = [a.format(run=toy_run, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]

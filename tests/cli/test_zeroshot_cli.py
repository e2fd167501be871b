"""``contrastkit zeroshot``: the report of a CLIP run, and one line + exit 2 for bad input."""

import json

import pytest

from contrastkit.cli import main
from contrastkit.training.trainer import TrainConfig, train

pytestmark = pytest.mark.slow

SHAPES = "circle,square,triangle,star,cross"


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    """A CLIP run of a few steps on shapes (the report's format, not its quality, is tested)."""
    out = tmp_path_factory.mktemp("runs") / "clip"
    config = TrainConfig(
        method="clip",
        data="shapes",
        steps=3,
        batch_size=16,
        backbone="cnn",
        backbone_options={"width": 4},
        method_options={"embed_dim": 16, "text_width": 16, "text_depth": 1, "text_heads": 2},
        device="cpu",
        out=str(out),
        eval=False,
        progress=False,
    )
    return train(config)


def test_report_prints_accuracy_seen_unseen_recall_and_confusion(clip_run, capsys):
    code = main(
        [
            "zeroshot",
            str(clip_run),
            "--labels",
            SHAPES,
            "--template",
            "a photo of a {}",
            "--template",
            "a picture of a {}",
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "held-out split of shapes: 1000 images" in out
    assert "accuracy" in out and "(chance 0.200" in out
    assert "seen combos" in out and "unseen combos" in out
    assert "image->text" in out and "R@1" in out and "R@5" in out
    assert "text->image" in out
    assert "truth \\ predicted" in out
    assert all(shape in out for shape in SHAPES.split(","))


def test_colour_labels_and_the_default_labels(clip_run, capsys):
    assert main(["zeroshot", str(clip_run), "--labels", "red,green,blue", "--device", "cpu"]) == 0
    assert "(chance 0.333" in capsys.readouterr().out
    assert main(["zeroshot", str(clip_run), "--device", "cpu"]) == 0  # the class names
    assert f"labels (5): {SHAPES.replace(',', ', ')}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labels", ""], "labels is empty"),
        (["--labels", " , "], "labels is empty"),
        (["--labels", SHAPES, "--template", "a photo of a"], "exactly one '{}'"),
        (["--labels", SHAPES, "--template", "{0[1]} {}"], "--template: template '{0[1]} {}'"),
        (["--labels", "circle,hexagon"], "do not match the dataset's class names"),
        (["--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(clip_run, capsys, args, message):
    assert main(["zeroshot", str(clip_run), *args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert err.startswith("contrastkit zeroshot: error:")


def test_a_run_of_another_method_or_no_run(tmp_path, capsys):
    other = tmp_path / "simclr"
    other.mkdir()
    config = TrainConfig(method="simclr", data="toy").to_dict()
    (other / "config.json").write_text(json.dumps(config))
    assert main(["zeroshot", str(other), "--labels", SHAPES]) == 2
    err = capsys.readouterr().err
    assert "holds a 'simclr' run; zeroshot needs a CLIP run" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["zeroshot", str(tmp_path / "nowhere"), "--labels", SHAPES]) == 2
    assert "is not a folder" in capsys.readouterr().err

"""``contrastkit attention``: a PNG from a tiny DINO ViT run; bad input gives one line, exit 2."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from contrastkit.cli import main
from contrastkit.training.config import TrainConfig
from contrastkit.training.trainer import train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEADS = 2
PANEL_PX = 140  # 1.4 inches at 100 dpi


def _tiny_run(out, **fields):
    config = TrainConfig(
        steps=2,
        batch_size=8,
        warmup_steps=0,
        eval=False,
        progress=False,
        device="cpu",
        out=str(out),
        **fields,
    )
    return train(config)


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    return _tiny_run(
        tmp_path_factory.mktemp("runs") / "dino-vit",
        method="dino",
        data="shapes",
        backbone="vit",
        backbone_options={"patch_size": 4, "dim": 16, "depth": 1, "heads": HEADS},
        method_options={"out_dim": 32, "hidden_dim": 32, "bottleneck_dim": 16},
        view_options={"n_local": 2},
    )


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    return _tiny_run(
        tmp_path_factory.mktemp("runs") / "simclr-cnn",
        method="simclr",
        data="digits",
        backbone="cnn",
        backbone_options={"width": 4},
        method_options={"hidden_dim": 16, "out_dim": 8},
    )


def _cli(*args):
    """Run the real command in a subprocess (exit code and stderr as a user sees them)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "contrastkit", "attention", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _check_png(path, columns, rows=1):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.width == pytest.approx(columns * PANEL_PX, abs=2)
        assert img.height == pytest.approx(rows * PANEL_PX + 30, abs=2)


@pytest.mark.slow
def test_writes_a_png_grid_for_an_image_file(vit_run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 256, (48, 60, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "overlay.png"
    assert main(["attention", str(vit_run), "--image", str(photo), "--out", str(out)]) == 0
    # image, 2 heads, mean, 60% mask
    _check_png(out, columns=1 + HEADS + 2)
    assert f"{HEADS} heads" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlay.png", "photo.jpg"]


@pytest.mark.slow
def test_a_dataset_sample_adds_its_true_mask_and_defaults_into_the_run(vit_run):
    assert main(["attention", str(vit_run), "--sample", "shapes:3"]) == 0
    _check_png(vit_run / "attention.png", columns=1 + HEADS + 3)


def _one_line_exit_2(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.slow
def test_a_run_without_a_vit_gives_one_line_and_exit_2(cnn_run, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), "red").save(photo)
    out = tmp_path / "never.png"
    result = _cli(cnn_run, "--image", photo, "--out", out)
    _one_line_exit_2(result, "cnn", "--backbone vit")
    assert not out.exists()


@pytest.mark.slow
def test_an_unreadable_or_missing_image_gives_one_line_and_exit_2(vit_run, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(PNG_SIGNATURE + b"not really a png")
    out = tmp_path / "never.png"
    _one_line_exit_2(_cli(vit_run, "--image", broken, "--out", out), "broken.png")
    assert main(["attention", str(vit_run), "--image", str(tmp_path / "missing.jpg")]) == 2
    assert not out.exists()


def test_an_out_folder_that_does_not_exist_is_refused_and_not_created(vit_run, tmp_path, capsys):
    out = tmp_path / "missing" / "a.png"
    assert main(["attention", str(vit_run), "--sample", "shapes:0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert not out.parent.exists()


def test_a_chosen_layer_is_drawn_and_a_missing_one_refused(vit_run, tmp_path, capsys):
    out = tmp_path / "first.png"
    argv = ["attention", str(vit_run), "--sample", "shapes:1", "--out", str(out)]
    assert main([*argv, "--layer", "0"]) == 0  # the fixture's ViT has one block
    assert "layer 0 of 1" in capsys.readouterr().out
    _check_png(out, columns=1 + HEADS + 3)
    assert main([*argv, "--layer", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--layer must be in [-1, 0] for this ViT, got 1" in err[0]


def test_a_size_whose_attention_cannot_fit_is_refused(vit_run, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), "red").save(photo)
    assert main(["attention", str(vit_run), "--image", str(photo), "--size", "4096"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--size 4096 gives" in err[0] and "--size <=" in err[0]


def test_bad_arguments_give_exit_2(tmp_path, capsys):
    assert main(["attention", str(tmp_path / "nowhere"), "--image", "x.png"]) == 2
    assert main(["attention", str(tmp_path), "--sample", "shapes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "RUN_DIR" in err[0] and "DATA:INDEX" in err[1]

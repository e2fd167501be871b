"""A newcomer's first hour (issue #18): the flags the messages name exist, a small folder of
one's own photos trains and evaluates with no extra flag, embeddings come with their names, the
public API resolves, and README's CPU install stays within the package's bounds."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import CIFAR10

from contrastkit.cli import main
from contrastkit.data import DATASETS, build_dataset, cifar
from contrastkit.evaluation.metrics import embed_dataset, unevaluable
from contrastkit.methods import METHODS
from contrastkit.training.config import TrainConfig
from contrastkit.training.files import tomllib
from contrastkit.training.resolve import fitting_batch_size
from contrastkit.training.runs import load_run
from contrastkit.training.trainer import prepare

ROOT = Path(__file__).resolve().parents[2]


def _help(capsys) -> str:
    assert main(["train", "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


# --- --download ------------------------------------------------------------------------------


class FakeCIFAR10:
    """Stands in for torchvision's CIFAR10: records how it was called, downloads nothing."""

    base_folder = CIFAR10.base_folder
    train_list, test_list, meta = CIFAR10.train_list, CIFAR10.test_list, CIFAR10.meta
    calls: list[dict] = []

    def __init__(self, root, train, download):
        FakeCIFAR10.calls.append({"root": root, "train": train, "download": download})
        self.data = np.zeros((8, 32, 32, 3), dtype=np.uint8)
        self.targets = [i % 2 for i in range(8)]
        self.classes = ["airplane", "automobile"]


def test_download_reaches_torchvision_and_the_hint_names_a_real_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(cifar.VARIANTS, "cifar10", FakeCIFAR10)
    monkeypatch.setattr(FakeCIFAR10, "calls", [])
    config = TrainConfig(data=f"cifar10:{tmp_path}", download=True, steps=1, batch_size=4)
    _, dataset, _, _ = prepare(config)
    assert FakeCIFAR10.calls == [{"root": str(tmp_path), "train": True, "download": True}]
    assert len(dataset) == 8
    # without the flag nothing is fetched, and the error's hint is a flag train --help lists
    code = main(["train", "--data", f"cifar10:{tmp_path}", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "pass --download" in err and len(FakeCIFAR10.calls) == 1
    assert not (tmp_path / "run").exists()
    assert "--download" in _help(capsys)


def test_help_lists_every_method_and_dataset_whole(capsys):
    text = _help(capsys).split("options:", 1)[1]  # past the usage line
    method_help = text.split("--method METHOD", 1)[1].split(" --", 1)[0]
    data_help = text.split("--data DATA", 1)[1].split(" --", 1)[0]
    assert "..." not in method_help and "..." not in data_help
    assert all(re.search(rf"\b{name}\b", method_help) for name in METHODS)
    assert all(re.search(rf"\b{name}\b", data_help) for name in DATASETS)


# --- a small folder of one's own photos ------------------------------------------------------


def test_the_default_batch_shrinks_to_the_data_and_stays_splittable():
    assert fitting_batch_size(256, 12) == 12
    assert fitting_batch_size(256, 13, world_size=2) == 12  # every process gets as many
    assert fitting_batch_size(16, 100) == 16  # fits: the default stays
    assert fitting_batch_size(256, 1) == 256  # no batch fits: the trainer's check says so


def test_unevaluable_names_what_a_small_split_cannot_support():
    three_of_one = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    assert set(unevaluable(three_of_one, torch.tensor([0, 1, 2]))) == {"separation"}
    assert set(unevaluable(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1]))) == {"linear_probe"}
    assert set(unevaluable(torch.tensor([0, 0]), torch.tensor([0, 0]))) == {
        "knn",
        "linear_probe",
        "separation",
    }
    unlabelled = unevaluable(torch.full((5,), -1), torch.full((2,), -1))
    assert set(unlabelled) == {"knn", "linear_probe", "separation"}
    assert "no labels" in unlabelled["knn"]
    assert unevaluable(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 1])) == {}


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    """15 generated photos in 3 class folders of 5, trained with no batch flag (1 step)."""
    root = tmp_path_factory.mktemp("newcomer")
    photos = root / "photos"
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "owl"):
        (photos / name).mkdir(parents=True)
        for i in range(5):
            pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(photos / name / f"{i}.png")
    run_dir = root / "run"
    argv = ["train", "--data", f"folder:{photos}", "--steps", "1", "--quiet", "--out", str(run_dir)]
    assert main(argv) == 0
    return photos, run_dir


def test_a_folder_of_15_photos_trains_and_evaluates_with_no_extra_flag(photo_run, capsys):
    _, run_dir = photo_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["batch_size"] == 12  # the 12 training photos, not the default 256
    evaluation = summary["eval"]
    for encoder in ("raw", "random_init", "trained"):
        assert 0 <= evaluation[encoder]["knn"] <= 1 and evaluation[encoder]["knn_k"] == 12
        assert 0 <= evaluation[encoder]["linear_probe"] <= 1
        assert "separation_gap" not in evaluation[encoder]
    assert set(evaluation["skipped"]) == {"separation"}  # one held-out photo per class
    assert "[1, 1, 1]" in evaluation["skipped"]["separation"]
    assert json.loads((run_dir / "config.json").read_text())["batch_size"] == 12


def _unlabelled_folder(root: Path, count: int) -> Path:
    rng = np.random.default_rng(count)
    root.mkdir()
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(root / f"{i}.jpg")
    return root


def test_a_tiny_unlabelled_folder_completes_its_run_and_says_what_it_skipped(tmp_path):
    photos = _unlabelled_folder(tmp_path / "three", 3)  # 2 to train, 1 held out
    run_dir = tmp_path / "run"
    argv = ["train", "--data", f"folder:{photos}", "--image-size", "32", "--steps", "1"]
    assert main([*argv, "--quiet", "--out", str(run_dir)]) == 0
    evaluation = json.loads((run_dir / "summary.json").read_text())["eval"]
    assert "no labels" in evaluation["skipped"]["knn"]
    assert "holds 1 sample(s)" in evaluation["skipped"]["uniformity"]
    assert "uniformity" not in evaluation["trained"]


def test_a_folder_with_one_training_image_is_one_clear_line(tmp_path, capsys):
    photos = _unlabelled_folder(tmp_path / "two", 2)  # 1 to train, 1 held out
    argv = ["train", "--data", f"folder:{photos}", "--image-size", "32", "--steps", "1"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds 1 training sample(s); training needs at least 2" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "run").exists()


# --- embed --split all -----------------------------------------------------------------------


def test_embed_split_all_writes_names_and_classes_beside_h(photo_run, tmp_path, capsys):
    photos, run_dir = photo_run
    out = tmp_path / "h.npz"
    argv = ["embed", str(run_dir), "--data", f"folder:{photos}", "--split", "all"]
    assert main([*argv, "--out", str(out)]) == 0
    saved = np.load(out)
    assert saved["embeddings"].shape == (15, 128) and saved["embeddings"].dtype == np.float32
    assert saved["split"].tolist() == ["train"] * 12 + ["test"] * 3
    assert saved["index"].tolist() == list(range(12)) + list(range(3))
    assert saved["class_names"].tolist() == ["cat", "dog", "owl"]
    assert sorted(saved["paths"].tolist()) == sorted(
        f"{c}/{i}.png" for c in ("cat", "dog", "owl") for i in range(5)
    )
    folders = [path.split("/")[0] for path in saved["paths"]]
    assert folders == saved["class_names"][saved["labels"]].tolist()
    method, _ = load_run(run_dir)
    test_h, _ = embed_dataset(method, build_dataset(f"folder:{photos}", train=False))
    np.testing.assert_allclose(saved["embeddings"][12:], test_h.numpy(), rtol=0, atol=1e-6)
    assert main([*argv, "--out", str(tmp_path / "h.npy")]) == 2
    assert "use --out FILE.npz" in capsys.readouterr().err


# --- the public API and the install ----------------------------------------------------------


def test_import_contrastkit_stays_light():
    script = "import sys, contrastkit; assert 'torch' not in sys.modules, sorted(sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_public_name_resolves():
    import contrastkit

    names = contrastkit.__all__
    assert {"fit", "load_encoder", "losses", "TrainConfig"} <= set(names)
    assert len(set(names)) == len(names)
    for name in contrastkit.__all__:
        assert getattr(contrastkit, name) is not None, name
    assert contrastkit.load_encoder.__module__ == "contrastkit.training.export"
    # an old module path is an attribute too, without importing it first (it warns: it moved)
    with pytest.warns(DeprecationWarning):
        sys.modules.pop("contrastkit.export", None)
        assert contrastkit.__getattr__("export").load_encoder is contrastkit.load_encoder
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        contrastkit.__getattr__("nope")


def test_readme_cpu_install_keeps_within_the_package_bounds():
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "download.pytorch.org/whl/cpu" in x)
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for package in ("torch", "torchvision"):
        bound = next(d for d in wanted if re.match(rf"{package}\b(?!vision)", d))
        assert f'"{bound}"' in line, (package, bound)
    assert line.endswith("pip install -e .")

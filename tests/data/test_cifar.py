"""A tiny CIFAR copy in the official python-pickle format.

torchvision refuses files whose MD5 differs from the official release (a safety check: the
files are pickles). The tests keep that check on and register the MD5s of the tiny files on the
torchvision classes for the duration of a test (monkeypatch), so the real loading path runs.
"""

import hashlib
import pickle

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10, CIFAR100

from contrastkit.data import build_dataset
from contrastkit.data.cifar import build_cifar

PER_BATCH = 4
CLASSES10 = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def _write(path, obj):
    path.write_bytes(pickle.dumps(obj))
    return [path.name, _md5(path)]


def _batch(rng, n, label_key, n_classes):
    data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)  # rows: R plane, G, B
    return {"data": data, label_key: rng.integers(0, n_classes, n).tolist()}


@pytest.fixture
def cifar10_copy(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = [_batch(rng, PER_BATCH, "labels", 10) for _ in range(6)]
    train_list = [_write(folder / f"data_batch_{i + 1}", batches[i]) for i in range(5)]
    test_list = [_write(folder / "test_batch", batches[5])]
    meta = {"filename": "batches.meta", "key": "label_names"}
    meta["md5"] = _write(folder / "batches.meta", {"label_names": CLASSES10})[1]
    monkeypatch.setattr(CIFAR10, "train_list", train_list)
    monkeypatch.setattr(CIFAR10, "test_list", test_list)
    monkeypatch.setattr(CIFAR10, "meta", meta)
    return tmp_path, batches


def test_tiny_cifar10_loads_through_torchvision(cifar10_copy):
    root, batches = cifar10_copy
    train = build_dataset(f"cifar10:{root}", train=True)
    test = build_dataset(f"cifar10:{root}", train=False)
    assert len(train) == 5 * PER_BATCH and len(test) == PER_BATCH
    assert train.class_names == CLASSES10 and train.kind == "images"
    assert train.input_shape == (3, 32, 32)
    x, y = test[1]
    expected = torch.from_numpy(batches[5]["data"][1].reshape(3, 32, 32)).float() / 255
    torch.testing.assert_close(x, expected)
    assert y == batches[5]["labels"][1]
    assert train.labels.tolist() == sum((b["labels"] for b in batches[:5]), [])


def test_path_may_name_the_batches_folder_itself(cifar10_copy):
    root, _ = cifar10_copy
    assert len(build_cifar("cifar10", str(root / "cifar-10-batches-py"), train=False)) == PER_BATCH


def test_missing_files_are_named_and_download_suggested(cifar10_copy):
    root, _ = cifar10_copy
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ValueError, match=r"lacks the expected file\(s\) data_batch_3 .*--download"):
        build_dataset(f"cifar10:{root}")


def test_empty_folder_names_every_file(tmp_path):
    with pytest.raises(ValueError, match="data_batch_1, data_batch_2.*test_batch, batches.meta"):
        build_dataset(f"cifar10:{tmp_path}")
    with pytest.raises(ValueError, match="train, test, meta"):
        build_dataset(f"cifar100:{tmp_path}")
    with pytest.raises(ValueError, match="needs a path"):
        build_dataset("cifar10")


def test_altered_file_is_refused(cifar10_copy):
    root, _ = cifar10_copy
    batch = root / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="test_batch .*do not match the official release's MD5"):
        build_dataset(f"cifar10:{root}", train=False)


def test_tiny_cifar100_uses_fine_labels(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    train = _batch(rng, 6, "fine_labels", 100)
    train["coarse_labels"] = [0] * 6
    names = [f"class{i}" for i in range(100)]
    monkeypatch.setattr(CIFAR100, "train_list", [_write(folder / "train", train)])
    monkeypatch.setattr(
        CIFAR100, "test_list", [_write(folder / "test", _batch(rng, 2, "fine_labels", 100))]
    )
    meta = {"filename": "meta", "key": "fine_label_names"}
    meta["md5"] = _write(folder / "meta", {"fine_label_names": names, "coarse_label_names": []})[1]
    monkeypatch.setattr(CIFAR100, "meta", meta)
    ds = build_dataset(f"cifar100:{tmp_path}")
    assert len(ds) == 6 and ds.labels.tolist() == train["fine_labels"]
    assert len(ds.class_names) == 100 and ds.name == "cifar100"

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.data import build_dataset
from contrastkit.data.folders import build_folder, split_indices


def _save(path, color, size=(40, 30), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)


@pytest.fixture
def class_tree(tmp_path):
    """cats/ (5 images, one nested deeper) and dogs/ (5 images), several formats."""
    for i in range(4):
        _save(tmp_path / "cats" / f"c{i}.png", (200, 10 * i, 0))
    _save(tmp_path / "cats" / "deep" / "inner" / "c4.JPG", (210, 0, 0), fmt="JPEG")
    for i, ext in enumerate(["jpg", "jpeg", "bmp", "gif", "webp"]):
        _save(tmp_path / "dogs" / f"d{i}.{ext}", (0, 0, 200 + 5 * i))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    return tmp_path


def test_recursive_labelled_folder_splits_by_class(class_tree):
    train = build_dataset(f"folder:{class_tree}", train=True)
    test = build_dataset(f"folder:{class_tree}", train=False)
    assert train.class_names == ["cats", "dogs"] == test.class_names
    assert len(train) + len(test) == 10 and len(test) == 2  # 20% of each class
    assert sorted(test.labels.tolist()) == [0, 1]
    assert not set(train.paths) & set(test.paths)
    assert "cats/deep/inner/c4.JPG" in train.paths + test.paths
    x, y = train[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32 and train.input_shape == x.shape
    # colour survives decoding and resizing: cats are red, dogs are blue
    for i in range(len(train)):
        x, y = train[i]
        red, blue = x[0].mean(), x[2].mean()
        assert (red > blue) == (train.class_names[y] == "cats")


def test_split_is_deterministic_and_independent_of_seed(class_tree):
    a = build_folder(str(class_tree), train=False, seed=0)
    b = build_folder(str(class_tree), train=False, seed=123)
    assert a.paths == b.paths


def test_images_at_the_root_mean_no_labels(tmp_path):
    for i in range(5):
        _save(tmp_path / f"img{i}.png", (i * 40, 0, 0))
    _save(tmp_path / "sub" / "other.png", (0, 0, 0))
    ds = build_folder(str(tmp_path), train=True, image_size=16)
    assert ds.labels is None and ds.class_names is None
    assert ds[0][1] == -1 and ds[0][0].shape == (3, 16, 16)
    assert len(ds) + len(build_folder(str(tmp_path), train=False, image_size=16)) == 6


def test_corrupt_files_are_skipped_with_one_counting_warning(class_tree, caplog):
    (class_tree / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (class_tree / "dogs" / "empty.jpg").write_bytes(b"")
    truncated = class_tree / "dogs" / "cut.png"
    _save(truncated, (1, 2, 3), size=(64, 64))
    truncated.write_bytes(truncated.read_bytes()[:40])
    with caplog.at_level(logging.WARNING, logger="contrastkit.data.folders"):
        train = build_folder(str(class_tree), train=True, image_size=8)
        test = build_folder(str(class_tree), train=False, image_size=8)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 3 unreadable image file(s)" in warnings[0].getMessage()
    assert len(train) + len(test) == 10


def test_grayscale_and_alpha_images_become_rgb(tmp_path):
    Image.new("L", (20, 20), 128).save(tmp_path / "gray.png")
    Image.new("RGBA", (20, 20), (255, 0, 0, 10)).save(tmp_path / "alpha.png")
    ds = build_folder(str(tmp_path), train=True, image_size=8)
    assert all(ds.load(i)[0].shape == (3, 20, 20) for i in range(len(ds)))
    assert ds[0][0].shape == (3, 8, 8)


def test_missing_empty_and_unreadable_folders(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        build_dataset(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(ValueError, match="needs a path"):
        build_dataset("folder")
    (tmp_path / "file.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match="is not a folder"):
        build_folder(str(tmp_path / "file.png"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="holds no image file"):
        build_folder(str(empty))
    with pytest.raises(ValueError, match=r"no readable image.*1 image file"):
        build_folder(str(tmp_path))


def test_split_indices_keeps_both_splits_non_empty():
    names = [f"f{i}.png" for i in range(7)]
    groups = [0, 0, 0, 0, 0, 1, 1]
    train, test = split_indices(names, groups, True), split_indices(names, groups, False)
    assert sorted(train + test) == list(range(7)) and len(test) == 2
    lone = split_indices(["a.png"], [0], True)
    assert lone == split_indices(["a.png"], [0], False) == [0]
    assert np.array_equal(
        split_indices(names, [0] * 7, False), split_indices(names, [0] * 7, False)
    )


def _non_utf8_name(folder, stem: bytes):
    """Return the str path of a file named by non-UTF-8 bytes, or skip where the OS refuses."""
    path = os.path.join(os.fsencode(folder), stem + b".png")
    try:
        Image.new("RGB", (20, 20), (0, 200, 0)).save(os.fsdecode(path), format="PNG")
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses file names that are not valid UTF-8")
    return os.fsdecode(path)


def test_a_non_utf8_file_name_is_read_with_the_rest(tmp_path, caplog):
    for i in range(4):
        _save(tmp_path / f"ok{i}.png", (200, 0, 0))
    odd = _non_utf8_name(tmp_path, b"\xff\xfe")
    with caplog.at_level(logging.WARNING):
        train = build_folder(str(tmp_path), train=True)
        test = build_folder(str(tmp_path), train=False)
    assert len(train) + len(test) == 5 and not caplog.records  # read, not skipped
    names = train.paths + test.paths
    assert os.path.basename(odd) in names
    assert os.path.exists(tmp_path / [n for n in names if not n.isascii()][0])  # reopens
    assert split_indices(names, [0] * 5, train=True) == split_indices(names, [0] * 5, True)


def test_a_non_utf8_class_folder_prints_and_unreadable_names_are_reprs(tmp_path, caplog):
    for i in range(2):
        _save(tmp_path / "ok" / f"{i}.png", (0, 0, 200))
    odd_folder = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9"))
    try:
        os.mkdir(odd_folder)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses file names that are not valid UTF-8")
    _non_utf8_name(odd_folder, b"a")
    Path(os.fsdecode(os.path.join(os.fsencode(odd_folder), b"b\xff.png"))).write_bytes(b"junk")
    with caplog.at_level(logging.WARNING):
        ds = build_folder(str(tmp_path))
    assert ds.class_names == ["caf\ufffd", "ok"]
    "".join(ds.class_names).encode("utf-8")  # printable anywhere: no lone surrogates
    (record,) = caplog.records
    assert "skipped 1 unreadable" in record.getMessage()
    assert repr("caf\udce9/b\udcff.png") in record.getMessage()  # named by repr, not garbled

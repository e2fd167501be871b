import io
import logging
import tarfile

import pytest
import torch
from PIL import Image

from contrastkit.cli import main
from contrastkit.data import build_dataset
from contrastkit.data.folders import build_folder
from contrastkit.data.shards import build_shards, write_shards
from contrastkit.training.batches import shard_order, steps_per_epoch


@pytest.fixture
def photos(tmp_path):
    """two classes of 10 small JPEGs: red cats, blue dogs."""
    for name, color in (("cats", (220, 20, 20)), ("dogs", (20, 20, 220))):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (40 + i, 30), color).save(tmp_path / "photos" / name / f"{i}.jpg")
    return tmp_path / "photos"


def test_shards_hold_the_folder_split_with_classes(photos, tmp_path):
    written = write_shards(str(photos), tmp_path / "sh", shard_size=3)
    assert written["images"] == {"train": 16, "test": 4} and written["skipped"] == 0
    assert len(written["train"]) == 6 and len(written["test"]) == 2
    with tarfile.open(tmp_path / "sh" / "train-000000.tar") as tar:
        names = tar.getnames()
    assert len(names) == 6 and {n.split(".")[1] for n in names} == {"jpg", "cls"}
    train = build_dataset(f"shards:{tmp_path / 'sh'}", train=True, image_size=16)
    test = build_shards(str(tmp_path / "sh"), train=False, image_size=16)
    folder = build_folder(str(photos), train=True)
    assert train.class_names == ["cats", "dogs"] and len(train) == 16 and len(test) == 4
    assert train.shard_sizes == (3, 3, 3, 3, 3, 1)
    assert sorted(train.labels.tolist()) == sorted(folder.labels.tolist())
    for i in range(len(train)):  # bytes as in the files; each class keeps its colour
        x, y = train[i]
        assert x.shape == (3, 16, 16) and (x[0].mean() > x[2].mean()) == (y == 0)
    assert sorted(train.load(i)[0].shape[-1] for i in range(16)) == sorted(
        folder.load(i)[0].shape[-1] for i in range(16)
    )


def test_unreadable_members_are_skipped_with_one_warning(photos, tmp_path, caplog):
    out = tmp_path / "sh"
    write_shards(str(photos), out, shard_size=100)
    with tarfile.open(out / "train-000000.tar", "a") as tar:  # a stranger's members
        for name, data in (("bad.jpg", b"\xff\xd8\xff junk"), ("notes.txt", b"hello")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (out / "train-000001.tar").write_bytes(b"not a tar file at all" * 100)
    with caplog.at_level(logging.WARNING, logger="contrastkit.data.shards"):
        train = build_shards(str(out), train=True)
        build_shards(str(out), train=True)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "skipped 2 unreadable" in record.getMessage()
    assert len(train) == 16 and train.shard_sizes == (16, 0)


def test_a_truncated_last_shard_keeps_its_whole_members_and_is_counted(photos, tmp_path, caplog):
    out = tmp_path / "sh"
    write_shards(str(photos), out, shard_size=8)  # 16 training photos: two shards of 8
    last = out / "train-000001.tar"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2 + 100])  # a copy that stopped half-way
    with caplog.at_level(logging.WARNING, logger="contrastkit.data.shards"):
        train = build_shards(str(out), train=True)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "train-000001.tar (truncated" in record.getMessage()
    assert train.shard_sizes[0] == 8 and 0 < train.shard_sizes[1] < 8
    for index in range(len(train)):  # every indexed photo is whole
        assert train.load(index)[0].shape[0] == 3
    assert train.skipped == 0


def test_no_readable_image_and_bad_arguments_are_clear_errors(photos, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train-000000.tar").write_bytes(b"junk")
    with pytest.raises(ValueError, match="no readable image"):
        build_shards(str(empty))
    with pytest.raises(ValueError, match="holds no train-"):
        build_shards(str(tmp_path))
    with pytest.raises(ValueError, match="--shard-size must be an integer >= 1"):
        write_shards(str(photos), tmp_path / "x", shard_size=0)
    assert main(["shard", f"folder:{photos}", "--out", str(tmp_path / "ok")]) == 0
    assert "train: 16 images in 1 shard(s)" in capsys.readouterr().out
    assert main(["shard", f"folder:{photos}", "--out", str(tmp_path / "ok")]) == 2
    assert "already holds shards" in capsys.readouterr().err
    assert main(["shard", "digits", "--out", str(tmp_path / "d")]) == 2
    assert "packs folder:PATH" in capsys.readouterr().err
    assert main(["train", "--data", "digits", "--image-size", "32"]) == 2
    assert "--image-size applies to folder and shards data" in capsys.readouterr().err


def test_each_process_gets_its_own_shards_each_epoch():
    sizes = [5, 5, 5, 5, 5, 2]
    starts = [0, 5, 10, 15, 20, 25]
    shard_of = {i: k for k, s in enumerate(starts) for i in range(s, s + sizes[k])}
    per_epoch = steps_per_epoch(27, 4, 2, sizes)
    assert per_epoch == (2 + 5 + 5) // 4  # the floor(6 / 2) smallest shards: 12 samples
    seen = []
    for epoch in range(3):
        a, b = (shard_order(0, epoch, sizes, r, 2) for r in (0, 1))
        assert not {shard_of[i] for i in a} & {shard_of[i] for i in b}
        assert sorted(a + b) == list(range(27))
        assert len(a) >= per_epoch * 4 and len(b) >= per_epoch * 4
        seen.append(a)
    assert seen[0] != seen[1]  # a new assignment and order every epoch
    assert shard_order(0, 1, sizes, 0, 2) == seen[1]  # a pure function of (seed, epoch, rank)
    with pytest.raises(ValueError, match="fewer than the 2 processes"):
        steps_per_epoch(5, 1, 2, [5])
    assert torch.equal(torch.tensor(shard_order(3, 0, [4], 0, 1)).sort().values, torch.arange(4))

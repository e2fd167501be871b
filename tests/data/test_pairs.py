"""``pairs:CSV``: image-caption pairs from a CSV, with clear errors for every bad row."""

import pytest
import torch
from PIL import Image

from contrastkit.data import build_dataset
from contrastkit.data.pairs import ImageTextPairs, read_pairs_csv

COLORS = {"red": (220, 30, 30), "blue": (30, 60, 230), "green": (40, 190, 50)}


def make_images(folder, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        color = list(COLORS.values())[i % 3]
        Image.new("RGB", (20 + 7 * i, 30), color).save(folder / name)


def write_csv(path, text: str):
    path.write_text(text)
    return path


@pytest.fixture
def pairs_dir(tmp_path):
    make_images(tmp_path / "img", ["a.png", "b.jpg", "c.png"])
    return tmp_path


def test_reads_rows_resizes_and_resolves_paths_against_the_csv(pairs_dir, monkeypatch):
    csv_path = write_csv(
        pairs_dir / "pairs.csv",
        "image,caption\nimg/a.png,a red square\nimg/b.jpg,  a blue square \nimg/c.png,green\n",
    )
    monkeypatch.chdir(pairs_dir.parent)  # paths are relative to the CSV, not the cwd
    ds = build_dataset(f"pairs:{csv_path}")
    assert len(ds) == 3 and ds.kind == "images" and ds.input_shape == (3, 64, 64)
    assert ds.captions == ["a red square", "a blue square", "green"]
    assert ds.labels is None and ds.class_names is None
    x, y = ds[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and y == -1
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x[0].mean() > 0.8 and x[2].mean() < 0.2  # red stays red


def test_optional_label_column_gives_class_names(pairs_dir):
    csv_path = write_csv(
        pairs_dir / "labelled.csv",
        "image,caption,label\nimg/a.png,a red thing,red\nimg/b.jpg,a blue thing,blue\n",
    )
    ds = read_pairs_csv(csv_path, image_size=8)
    assert ds.class_names == ["blue", "red"]
    assert ds.labels.tolist() == [1, 0]
    assert ds[1][0].shape == (3, 8, 8) and ds[1][1] == 0


def test_spec_needs_a_path():
    with pytest.raises(ValueError, match="needs a path"):
        build_dataset("pairs")


def test_missing_columns_are_named(pairs_dir):
    csv_path = write_csv(pairs_dir / "bad.csv", "path,text\nimg/a.png,a red square\n")
    with pytest.raises(ValueError, match="missing the column\\(s\\) image, caption"):
        read_pairs_csv(csv_path)
    csv_path = write_csv(pairs_dir / "bad2.csv", "image,label\nimg/a.png,red\n")
    with pytest.raises(ValueError, match="missing the column\\(s\\) caption"):
        read_pairs_csv(csv_path)


def test_missing_images_are_counted_and_the_first_is_named(pairs_dir):
    csv_path = write_csv(
        pairs_dir / "missing.csv",
        "image,caption\nimg/a.png,one\nimg/nope1.png,two\nimg/b.jpg,three\nimg/nope2.png,four\n",
    )
    with pytest.raises(ValueError, match=r"2 of 4 images do not exist; the first is row 2.*nope1"):
        read_pairs_csv(csv_path)


def test_a_folder_or_a_device_is_not_an_image_file(pairs_dir):
    (pairs_dir / "img" / "sub").mkdir()
    csv_path = write_csv(pairs_dir / "dir.csv", "image,caption\nimg/a.png,one\nimg/sub,two\n")
    with pytest.raises(ValueError, match=r"1 of 2 image paths are not image files.*sub \(a folder"):
        read_pairs_csv(csv_path)
    csv_path = write_csv(pairs_dir / "dev.csv", "image,caption\n/dev/zero,one\n")
    with pytest.raises(ValueError, match=r"/dev/zero \(not a regular file\)"):
        read_pairs_csv(csv_path)


def test_unreadable_images_are_counted(pairs_dir):
    (pairs_dir / "img" / "broken.png").write_bytes(b"not a png at all")
    csv_path = write_csv(pairs_dir / "broken.csv", "image,caption\nimg/broken.png,one\n")
    with pytest.raises(ValueError, match="1 of 1 images cannot be read.*broken.png"):
        read_pairs_csv(csv_path)


def test_a_decompression_bomb_counts_as_unreadable(pairs_dir, monkeypatch):
    # PIL refuses images over twice MAX_IMAGE_PIXELS; a low limit makes a 20x30 image one
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    csv_path = write_csv(pairs_dir / "bomb.csv", "image,caption\nimg/a.png,one\n")
    with pytest.raises(ValueError, match="1 of 1 images cannot be read.*a.png"):
        read_pairs_csv(csv_path)


def test_empty_caption_names_its_row(pairs_dir):
    csv_path = write_csv(
        pairs_dir / "empty.csv", "image,caption\nimg/a.png,one\nimg/b.jpg,   \nimg/c.png,x\n"
    )
    with pytest.raises(ValueError, match=r"row 2 \(line 3\) has an empty caption"):
        read_pairs_csv(csv_path)


def test_rows_whose_counts_differ_from_the_header(pairs_dir):
    csv_path = write_csv(pairs_dir / "short.csv", "image,caption\nimg/a.png,one\nimg/b.jpg\n")
    with pytest.raises(ValueError, match="row 2 .* has an image but no caption"):
        read_pairs_csv(csv_path)
    csv_path = write_csv(pairs_dir / "long.csv", "image,caption\nimg/a.png,one,extra\n")
    with pytest.raises(ValueError, match="row 1 .* more fields than its header"):
        read_pairs_csv(csv_path)
    csv_path = write_csv(pairs_dir / "none.csv", "image,caption\n")
    with pytest.raises(ValueError, match="no rows"):
        read_pairs_csv(csv_path)
    with pytest.raises(ValueError, match="does not exist"):
        read_pairs_csv(pairs_dir / "absent.csv")


def test_image_and_caption_counts_must_match(pairs_dir):
    images = [pairs_dir / "img" / "a.png", pairs_dir / "img" / "b.jpg"]
    with pytest.raises(ValueError, match="2 images and 1 captions"):
        ImageTextPairs(images, ["one"])
    with pytest.raises(ValueError, match=r"captions\[1\] is empty"):
        ImageTextPairs(images, ["one", ""])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("image,caption\nimg/a.png," + "x" * 200_000 + "\n", "has a field over 131,072 char"),
        (b"image,caption\nimg/a.png,caf\xe9\n", "is not UTF-8 text"),
    ],
    ids=["caption-over-128k", "not-utf8"],
)
def test_an_unreadable_csv_is_one_value_error_naming_it(pairs_dir, content, message):
    path = pairs_dir / "big.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=f"pairs CSV big.csv .*{message}"):
        read_pairs_csv(path)

import numpy as np
import pytest
from PIL import Image

from contrastkit.data.photo_folder import PHOTOS, make_photo_folder


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_writes_balanced_class_folders_of_jpegs_of_the_right_size(tmp_path):
    out = make_photo_folder(tmp_path / "photos", 30, classes=3)
    assert out == tmp_path / "photos"
    files = _files(out)
    assert len(files) == 30 and all(f.endswith(".jpg") for f in files)  # no temporary left
    assert sorted({f.split("/")[0] for f in files}) == ["class_00", "class_01", "class_02"]
    assert [f for f in files if f.startswith("class_01/")][:2] == [
        "class_01/000001.jpg",
        "class_01/000004.jpg",
    ]
    sizes = set()
    for f in files:
        with Image.open(out / f) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            sizes.add(image.size)
    assert sizes == {(500, 375), (375, 500)}  # landscape, and some portrait


def test_same_seed_same_bytes_and_image_k_independent_of_count(tmp_path):
    a = make_photo_folder(tmp_path / "a", 12, classes=4, size=(64, 48), seed=3)
    b = make_photo_folder(tmp_path / "b", 12, classes=4, size=(64, 48), seed=3)
    few = make_photo_folder(tmp_path / "few", 5, classes=4, size=(64, 48), seed=3)
    other = make_photo_folder(tmp_path / "other", 12, classes=4, size=(64, 48), seed=4)
    assert _files(a) == _files(b) == _files(other)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in _files(a))
    assert all((a / f).read_bytes() == (few / f).read_bytes() for f in _files(few))
    assert all((a / f).read_bytes() != (other / f).read_bytes() for f in _files(a))


def test_each_class_is_one_source_photo(tmp_path):
    # class 4 is the Hubble deep field (mostly black), class 5 the bright IHC slide
    assert PHOTOS[4] == "hubble_deep_field.jpg" and PHOTOS[5] == "ihc.png"
    out = make_photo_folder(tmp_path, 12, classes=6, size=(80, 60))

    def brightness(c):
        folder = out / f"class_{c:02d}"
        return np.mean([np.asarray(Image.open(p)).mean() for p in folder.iterdir()])

    assert brightness(4) < 60 < 120 < brightness(5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_images": 0}, "num_images must be a positive int"),
        ({"classes": 0}, r"classes must be an int in \[1, 15\]"),
        ({"classes": len(PHOTOS) + 1}, "classes must be an int"),
        ({"size": (500,)}, r"size must be \(width, height\)"),
        ({"size": (4, 4)}, "two ints >= 8"),
        ({"quality": 100}, r"quality must be an int in \[1, 95\]"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_photo_folder(tmp_path, **({"num_images": 2} | kwargs))
    assert not any(tmp_path.iterdir())  # nothing written

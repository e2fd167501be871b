import io
import logging
import os

import pytest
import torch
from PIL import Image

import contrastkit.data.decode as decode
from contrastkit.cli import main
from contrastkit.data.decode import UnreadableImageError, decode_rgb, fit_square, image_header
from contrastkit.data.folders import build_folder


def _jpeg(size=(50, 40), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_decoders_agree_and_every_failure_is_one_error_type():
    data = _jpeg()
    assert image_header(data) == ("JPEG", 50, 40)
    image = decode_rgb(data)
    assert image.shape == (3, 40, 50) and image.dtype == torch.uint8
    assert abs(int(image[0].float().mean()) - 200) <= 2
    buffer = io.BytesIO()
    Image.new("RGB", (50, 40), (200, 30, 30)).save(buffer, format="BMP")  # read by PIL
    assert decode_rgb(buffer.getvalue()).shape == (3, 40, 50)
    for bad in (b"", b"not an image", data[: len(data) // 2]):
        with pytest.raises(UnreadableImageError):
            decode_rgb(bad, "x.jpg")
    assert fit_square(image, 16).shape == (3, 16, 16)


def test_a_decompression_bomb_is_refused_from_its_header(monkeypatch):
    monkeypatch.setattr(decode, "MAX_PIXELS", 1000)
    with pytest.raises(UnreadableImageError, match="decompression bomb"):
        image_header(_jpeg(), "big.jpg")


def test_bombs_and_unreadable_files_are_skipped_with_one_count(tmp_path, monkeypatch, caplog):
    for i in range(4):
        (tmp_path / f"ok{i}.jpg").write_bytes(_jpeg((20, 20)))
    (tmp_path / "big.jpg").write_bytes(_jpeg((60, 60)))
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(_jpeg((20, 20)))
    locked.chmod(0)
    monkeypatch.setattr(decode, "MAX_PIXELS", 1000)
    unreadable = 1 if os.geteuid() != 0 else 0  # root reads any file
    with caplog.at_level(logging.WARNING, logger="contrastkit.data.folders"):
        ds = build_folder(str(tmp_path), train=True)
    (record,) = caplog.records
    assert f"skipped {1 + unreadable} unreadable" in record.getMessage()
    assert "big.jpg" not in ds.names
    locked.chmod(0o644)


def test_a_folder_with_no_readable_image_exits_2_without_a_traceback(tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(b"junk")
    (tmp_path / "b.png").write_bytes(_jpeg()[:20])
    assert main(["train", "--data", f"folder:{tmp_path}", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "has no readable image" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()

"""A folder of photos with bad files among good ones trains: real files, real workers."""

import subprocess
import sys

import torch
from PIL import Image

# Trains on FOLDER with 2 real DataLoader workers, images above 10,000 pixels counted as
# decompression bombs (the real limit is 89 million pixels: too large for a test).
RUN = """
import sys
import contrastkit.data.decode as decode
import contrastkit.data.folders as folders
from contrastkit.cli import main

decode.MAX_PIXELS = 10_000
folders.IN_MEMORY_BYTES = 0  # streamed: decoded in the workers
folder, out = sys.argv[1:]
sys.exit(main(["train", "--method", "simclr", "--data", f"folder:{folder}", "--steps", "8",
               "--batch-size", "4", "--num-workers", "2", "--image-size", "32", "--out", out]))
"""


def _jpeg(path, size=(64, 48), seed=0):
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8)
    Image.fromarray(pixels.numpy()).save(path, quality=90)


def test_corrupt_truncated_empty_non_image_and_bomb_files_are_skipped_and_counted(tmp_path):
    folder = tmp_path / "photos"
    for k, name in enumerate(("cats", "dogs")):
        (folder / name).mkdir(parents=True)
        for i in range(10):
            _jpeg(folder / name / f"{i}.jpg", seed=10 * k + i)
    bad = folder / "cats"
    (bad / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4)
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "notes.png").write_text("not an image")
    _jpeg(bad / "bomb.jpg", size=(200, 200))
    for i in range(3):  # truncated after a good header: found bad only when decoded
        data = (folder / "dogs" / f"{i}.jpg").read_bytes()
        (folder / "dogs" / f"{i}.jpg").write_bytes(data[: len(data) // 2])
    argv = [sys.executable, "-c", RUN, str(folder), str(tmp_path / "run")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "summary.json").exists()
    found = [line for line in done.stderr.splitlines() if "unreadable image file" in line]
    assert len(found) == 1 and "skipped 4 unreadable image file(s)" in found[0], found
    assert "skipping an unreadable image" in done.stderr  # a truncated one, met in a worker
    assert "Traceback" not in done.stderr

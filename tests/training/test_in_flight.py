"""A DataLoader worker that dies while it reads a photo ends the run with one line naming it."""

import subprocess
import sys

import torch
from PIL import Image

from contrastkit.data.folders import build_folder
from contrastkit.training.in_flight import InFlight, WorkerDiedError, worker_death

# Trains on FOLDER with 2 real DataLoader workers; the worker that reads POISON kills itself
# with SIGKILL, as the kernel's out-of-memory killer or a crashing decoder would.
RUN = """
import os, signal, sys
from torch.utils.data import get_worker_info
import contrastkit.data.folders as folders
from contrastkit.cli import main
from contrastkit.data.streaming import FileImages

folder, out, poison = sys.argv[1:]
folders.IN_MEMORY_BYTES = 0  # streamed: decoded in the workers
decode = FileImages.decode

def deadly(self, index):
    if self.names[index] == poison and get_worker_info() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return decode(self, index)

FileImages.decode = deadly
sys.exit(main(["train", "--method", "simclr", "--data", f"folder:{folder}", "--steps", "6",
               "--batch-size", "4", "--num-workers", "2", "--image-size", "32", "--no-eval",
               "--out", out]))
"""


def test_a_dead_worker_names_the_file_it_was_reading(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    generator = torch.Generator().manual_seed(0)
    for i in range(16):
        pixels = torch.randint(0, 256, (48, 64, 3), generator=generator, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"{i:02d}.jpg", quality=90)
    poison = build_folder(str(folder), train=True).names[3]  # read in the first epoch
    argv = [sys.executable, "-c", RUN, str(folder), str(tmp_path / "run"), poison]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "DataLoader worker died while reading" in last and repr(poison) in last, last
    assert "Traceback" not in done.stderr


def test_only_a_dead_photo_worker_is_explained():
    in_flight = InFlight(["a.jpg", "b.jpg"], workers=2)
    in_flight.table[:] = torch.tensor([[101, 1], [102, 0]])
    died = RuntimeError("DataLoader worker (pid 102) is killed by signal: Killed. ")
    assert worker_death(died) is died  # no photo loader is running
    with in_flight:
        explained = worker_death(died)
        assert isinstance(explained, WorkerDiedError) and "'a.jpg'" in str(explained)
        assert "'b.jpg'" not in str(explained)
        several = worker_death(RuntimeError("DataLoader worker (pid(s) 101, 102) exited"))
        assert "'b.jpg', 'a.jpg'" in str(several)
        other = RuntimeError("mat1 and mat2 shapes cannot be multiplied")
        assert worker_death(other) is other

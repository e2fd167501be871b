"""Panel 1's two encoders: one at random initialisation, one trained by contrastkit's own trainer.

The trained encoder is SimCLR (``contrastkit.training.trainer.train``, the trainer every run uses)
on the
demo pictures (``demo_images.DemoImages``) with the SimCLR augmentations at ``INPUT_SIZE`` pixels.
It trains once, in a child process so that the web server stays responsive and keeps its own
random state, and is cached as an ordinary run folder under the user's cache folder:
``$CONTRASTKIT_CACHE``, else ``$XDG_CACHE_HOME/contrastkit``, else ``~/.cache/contrastkit``.
The folder name holds a hash of the recipe, so changing the recipe retrains.

Run ``python -m contrastkit.web.encoder_cache WORK_DIR`` to train into ``WORK_DIR/run``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from contrastkit.training.config import TrainConfig
from contrastkit.training.runs import SUMMARY_FILE, build_method, load_run, read_metrics

log = logging.getLogger(__name__)

INPUT_SIZE = 32  # side of the views the encoder is trained on
TRAIN_SIDE = 64  # the pictures are stored at this side for training
TRAIN_SHAPES = 8  # shapes scenes next to the photographs (the same the page shows)
RECIPE: dict = {
    "method": "simclr",
    "backbone": "cnn",
    "backbone_options": {"width": 32},
    "method_options": {"hidden_dim": 256, "out_dim": 64},
    "temperature": 0.5,
    "steps": 200,
    "checkpoint_every": 200,  # one epoch is one step here: checkpoint once, at the end
    "batch_size": 16,
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "warmup_steps": 10,
    "view_options": {"size": INPUT_SIZE},
    "seed": 0,
    "eval": False,
    "progress": False,
    "log_every": 5,
    "device": "cpu",
}
RECIPE_VERSION = 3  # bump when the pictures, their layout on disk or the trainer's views change

Encoder = Callable[[Tensor], Tensor]
# A demo encoder is the whole SimCLR method: ``embed`` gives h, ``projector`` maps h to z.
DemoMethod = torch.nn.Module


def default_cache_dir() -> Path:
    """Return the cache folder: $CONTRASTKIT_CACHE, $XDG_CACHE_HOME/contrastkit or ~/.cache/..."""
    if os.environ.get("CONTRASTKIT_CACHE"):
        return Path(os.environ["CONTRASTKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "contrastkit"


def recipe_key() -> str:
    """Return a short hash of everything that decides the trained encoder."""
    text = json.dumps(
        {"recipe": RECIPE, "version": RECIPE_VERSION, "side": TRAIN_SIDE, "shapes": TRAIN_SHAPES},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def recipe_config(images_dir: Path, out: Path) -> TrainConfig:
    """Return the training config of the demo encoder for pictures saved in ``images_dir``."""
    return TrainConfig(**RECIPE, data=f"folder:{images_dir}", out=str(out))


def save_pictures(images_dir: Path) -> None:
    """Write the training pictures as PNG files that the ``folder`` dataset reads back.

    Each picture gets a sub-folder of its own: it is then its own class, and the ``folder``
    dataset puts a class of one image in the train split (an unlabelled folder would hold 20%
    of the pictures out of training).
    """
    from PIL import Image

    from contrastkit.web.demo_images import DemoImages

    pictures = DemoImages(TRAIN_SIDE, num_shapes=TRAIN_SHAPES)
    for i, (image, name) in enumerate(zip(pictures.images, pictures.class_names, strict=True)):
        folder = images_dir / f"{i:02d}-{name.replace(' ', '_')}"
        folder.mkdir(parents=True, exist_ok=True)
        array = (image * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(array).save(folder / "picture.png")


def train_encoder(work_dir: Path) -> Path:
    """Train the demo encoder into ``work_dir/run`` (atomically: a partial run is never there).

    Returns:
        The run folder.
    """
    from contrastkit.training.trainer import train

    work_dir = Path(work_dir)
    final = work_dir / "run"
    if (final / SUMMARY_FILE).exists():
        return final
    _remove_abandoned_runs(work_dir)
    images = work_dir / "images"
    save_pictures(images)
    partial = work_dir / f"run.partial-{os.getpid()}"
    train(recipe_config(images, partial), overwrite=True)
    try:
        partial.rename(final)
    except OSError:  # another process finished first: keep its run
        shutil.rmtree(partial, ignore_errors=True)
    return final


def _remove_abandoned_runs(work_dir: Path) -> None:
    """Delete partial runs left by training processes that are gone (a stopped server)."""
    for partial in work_dir.glob("run.partial-*"):
        try:
            os.kill(int(partial.name.rsplit("-", 1)[1]), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(partial, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            continue


class DemoEncoders:
    """The untrained and the trained encoder of panel 1, and the state of the training.

    Args:
        cache_dir: the cache folder; the encoder lives in ``cache_dir/demo-encoder-<hash>``.
    """

    def __init__(self, cache_dir: Path) -> None:
        self.work_dir = Path(cache_dir) / f"demo-encoder-{recipe_key()}"
        self.input_size = INPUT_SIZE
        self._untrained: DemoMethod | None = None
        self._trained: DemoMethod | None = None
        self._status, self._message = "starting", "starting"
        self._started = time.monotonic()
        self._process: subprocess.Popen | None = None
        self._stopping = False
        self._lock = threading.Lock()

    def start(self, train: bool = True) -> None:
        """Load the cached encoder, or start training it in the background (when ``train``)."""
        if (self.work_dir / "run" / SUMMARY_FILE).exists():
            self._load()
        elif train:
            self._set("training", "training… (about a minute, once; then cached)")
            threading.Thread(target=self._train_in_background, daemon=True).start()
        else:
            self._set("unavailable", "not trained yet (start the demo to train it)")

    def stop(self) -> None:
        """Stop a training still running (the next start begins it again)."""
        with self._lock:
            self._stopping = True
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def _set(self, status: str, message: str) -> None:
        with self._lock:
            self._status, self._message = status, message

    def _train_in_background(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.work_dir / "train.log"
        command = [sys.executable, "-m", "contrastkit.web.encoder_cache", str(self.work_dir)]
        started = time.monotonic()
        with open(log_path, "w") as log_file:
            with self._lock:  # stop() either sees the process or keeps it from starting
                if self._stopping:
                    return
                self._process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
            code = self._process.wait()
        if self._stopping:
            return
        if code != 0 or not (self.work_dir / "run" / SUMMARY_FILE).exists():
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            self._set("failed", f"training failed (exit code {code}): {tail[0][:300]}")
            log.error("demo encoder training failed; see %s", log_path)
            return
        log.info("demo encoder trained in %.0f s", time.monotonic() - started)
        self._load()

    def _load(self) -> None:
        try:
            method, config = load_run(self.work_dir / "run")
        except (ValueError, OSError) as err:
            self._set("failed", f"cannot load the cached encoder ({err}); delete {self.work_dir}")
            return
        self._untrained = build_method(config).eval()
        with self._lock:
            self._trained = method.eval()
            self._status = "ready"
            self._message = f"ready: SimCLR, {config.steps} steps on these pictures (cached)"

    def _progress(self) -> str:
        partial = sorted(self.work_dir.glob("run.partial-*"))
        steps = [r["step"] for p in partial for r in read_metrics(p) if r.get("event") == "step"]
        elapsed = time.monotonic() - self._started
        done = f"step {max(steps)} of {RECIPE['steps']}, " if steps else ""
        return f"training… ({done}{elapsed:.0f} s; about a minute, once, then cached)"

    def status(self) -> dict:
        """Return ``{"status": starting|training|ready|failed|unavailable, "message": str}``."""
        with self._lock:
            status, message = self._status, self._message
        if status == "training":
            message = self._progress()
        return {"status": status, "message": message}

    def available(self) -> dict[str, Encoder]:
        """Return the encoders ready to use: ``{"untrained": f, "trained": f}`` (h = f(x))."""
        return {name: method.embed for name, method in self.methods().items()}

    def methods(self) -> dict[str, DemoMethod]:
        """Return the SimCLR methods behind ``available()``: h = m.embed(x), z = m.projector(h)."""
        if self._untrained is None:
            self._untrained = self._build_untrained()
        methods = {"untrained": self._untrained}
        with self._lock:
            if self._trained is not None:
                methods["trained"] = self._trained
        return methods

    def _build_untrained(self) -> DemoMethod:
        config = recipe_config(self.work_dir / "images", self.work_dir / "run")
        config.input_shape = [3, TRAIN_SIDE, TRAIN_SIDE]
        return build_method(config).eval()


def _exit_with_parent(parent: int) -> None:
    """Stop this training process when the server that started it is gone."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    """Train the demo encoder into ``argv[0]/run``; the server runs this in a child process."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m contrastkit.web.encoder_cache WORK_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    # one thread: the server keeps a core for its requests, and small convolutions gain little
    # from more threads on a busy machine (they spin, waiting for each other)
    torch.set_num_threads(1)
    run_dir = train_encoder(Path(args[0]))
    print(f"demo encoder: {run_dir}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

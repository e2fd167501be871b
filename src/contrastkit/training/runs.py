"""Run folders: building a method from a config, reloading a saved run, evaluating it.

A run folder holds ``config.json`` (the resolved ``TrainConfig``), ``metrics.jsonl`` (one JSON
object per logged step and per epoch), ``checkpoint.pt``, ``summary.json`` and PNG plots.
``load_run`` rebuilds the method from ``config.json`` and loads the checkpoint's weights without
executing anything from the folder.

Letters used in shapes: N samples, F feature width.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from contrastkit.checkpoint import atomic_write, load_checkpoint
from contrastkit.data import build_dataset, image_size_for
from contrastkit.evaluation import metrics as ev
from contrastkit.methods import METHODS, Method
from contrastkit.models.backbones import build_backbone
from contrastkit.training import plots
from contrastkit.training.batches import DrawDataset, ViewDataset, collate_views, mix_seed
from contrastkit.training.config import PYTHON_OBJECT, TrainConfig
from contrastkit.training.files import read_values
from contrastkit.transforms import build_view_fn
from contrastkit.transforms.batched import batched_view_fn

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
SUMMARY_FILE = "summary.json"
PLOT_FILES = (
    "loss.png",
    "knn.png",
    "embedding_map.png",
    "embedding_tsne.png",
    "similarity_hist.png",
)
RUN_FILES = (CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, SUMMARY_FILE, *PLOT_FILES)
LABELS = {"raw": "raw input", "random_init": "random init", "trained": "trained encoder"}
MAX_VIEW_PAIRS = 2000  # held-out samples whose two views measure alignment
MAX_PLOT_POINTS = 5000  # held-out samples in the embedding maps and similarity histograms
KNN_K = 20  # neighbours of the kNN probe (capped at the training samples there are)
# (training, held-out) photos the end of ``train`` evaluates on, a seeded subset of full-resolution
# data: three encoders at 224 px over a whole folder would cost more than a short run's training
PHOTO_EVAL_LIMITS = (1000, 500)
# photos per forward pass when evaluating full-resolution data: 64 x 3 x 224 x 224 floats is
# 37 MiB, and the loader holds a few such batches per worker (512 held 1.2 GB in flight)
PHOTO_EVAL_BATCH = 64
# views for alignment are drawn as if from this (never trained) epoch
EVAL_VIEW_EPOCH = -1


def eval_batch_size(config: TrainConfig, dataset) -> int:
    """Return ``config.eval_batch_size``, at most ``PHOTO_EVAL_BATCH`` for full-resolution data."""
    if getattr(dataset, "full_resolution", False):
        return min(config.eval_batch_size, PHOTO_EVAL_BATCH)
    return config.eval_batch_size


def build_method(config: TrainConfig, backbone: torch.nn.Module | None = None) -> Method:
    """Build the method of a resolved config with its initial weights (seeded by config.seed).

    ``backbone``: a module with ``.feature_dim`` to use instead of building ``config.backbone``
    (``contrastkit.fit`` with the user's own network; only the heads are initialised here).

    Raises:
        ValueError: unknown backbone, an option the backbone or method does not take, or sizes
            whose weights do not fit in memory (``--set hidden_dim=1000000000000``).
    """
    if config.input_shape is None:
        raise ValueError("config.input_shape is unset: resolve the config against its data first")
    if backbone is None and str(config.backbone).startswith(PYTHON_OBJECT):
        raise ValueError(
            f"backbone {config.backbone!r} was a module given to contrastkit.fit, which "
            "config.json cannot rebuild: build it in Python and load the run with "
            "build_method(config, backbone=module) (docs/python-api.md)"
        )
    try:
        return _build_method(config, backbone)
    except (MemoryError, RuntimeError) as err:
        if not isinstance(err, MemoryError) and "allocate" not in str(err):
            raise
        sizes = {**config.backbone_options, **config.method_options}
        raise ValueError(
            f"the {config.method} model's weights do not fit in memory with the sizes given "
            f"({', '.join(f'{k}={v}' for k, v in sizes.items()) or 'the defaults'})"
        ) from None


def _build_method(config: TrainConfig, backbone: torch.nn.Module | None) -> Method:
    shape = list(config.input_shape)
    image = len(shape) == 3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(mix_seed(config.seed, -2))  # init never depends on earlier RNG use
        if backbone is None:  # a module given by the user is used as it is
            backbone = build_backbone(
                config.backbone,
                in_channels=shape[0] if image else 1,
                image_size=shape[-1] if image else 1,
                input_dim=math.prod(shape),
                **config.backbone_options,
            )
        try:
            return METHODS[config.method](backbone, **config.method_options)
        except TypeError as err:
            raise ValueError(f"method {config.method!r}: bad method_options ({err})") from err


def check_out_dir(out: str | os.PathLike, *, overwrite: bool) -> Path:
    """Check that a run folder can be created at ``out``, changing nothing.

    Raises:
        ValueError: the folder exists and is not empty (without ``overwrite``), or it exists
            but is not a run folder (``overwrite`` only replaces run folders).
        OSError: the folder or its nearest existing parent is not a writable directory.
    """
    out = Path(out).expanduser()
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"--out {out} exists and is not a folder")
        entries = list(out.iterdir())
        if entries and not overwrite:
            raise ValueError(
                f"--out {out} already exists; pass --resume {out} to continue it or "
                "--overwrite to start again"
            )
        if entries and not (out / CONFIG_FILE).exists():
            raise ValueError(f"--overwrite refuses to empty {out}: it is not a contrastkit run")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out}: {parent} is not a writable folder")
    return out


def create_run_dir(out: str | os.PathLike, config: dict, *, overwrite: bool) -> Path:
    """Create the run folder (after ``check_out_dir``) holding ``config`` as ``config.json``.

    ``overwrite`` removes old run files only. When ``config.json`` cannot be written (a full
    disk), the folders this call created are removed again: a failed start leaves nothing.

    Raises:
        OSError: naming the path that could not be created or written.
    """
    out = check_out_dir(out, overwrite=overwrite)
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
        write_json(out / CONFIG_FILE, config)
    except OSError:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return out


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda handle: handle.write(text), mode="w")


def read_config(run_dir: str | os.PathLike) -> TrainConfig:
    """Read ``RUN_DIR/config.json``.

    Raises:
        ValueError: not a run folder, or the file is not a valid config.
    """
    path = Path(run_dir).expanduser() / CONFIG_FILE
    if not Path(run_dir).expanduser().is_dir():
        raise ValueError(f"{run_dir} is not a folder")
    values = read_values(
        path,
        json.loads,
        missing=f"{run_dir} is not a contrastkit run (no {CONFIG_FILE})",
        invalid=f"{path} is not valid JSON",
    )
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(values).__name__}")
    values.setdefault("view_pipeline", "per_sample")  # what runs made before the field used
    return TrainConfig.from_dict(values, source=str(path))


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """Return the records of ``metrics.jsonl`` (a torn last line, from a crash, is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_metrics(run_dir: str | os.PathLike, step: int) -> None:
    """Keep only the metrics records up to ``step`` (those a checkpoint at ``step`` has seen)."""
    kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    atomic_write(Path(run_dir) / METRICS_FILE, lambda handle: handle.write(text), mode="w")


def load_run(run_dir: str | os.PathLike, device: str = "cpu") -> tuple[Method, TrainConfig]:
    """Rebuild a trained method from a run folder: ``(method in eval mode, config)``.

    Only ``config.json`` (JSON) and ``checkpoint.pt`` (tensors, loaded with weights_only) are
    read; nothing in the folder can execute code.

    Raises:
        ValueError: not a run folder, or a missing, corrupted or foreign checkpoint.
    """
    config = read_config(run_dir)
    state = load_checkpoint(Path(run_dir).expanduser() / CHECKPOINT_FILE)
    method = build_method(config)
    try:
        method.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        raise ValueError(
            f"not a contrastkit checkpoint: {run_dir}/{CHECKPOINT_FILE} does not match "
            f"config.json ({str(err).splitlines()[0][:200]})"
        ) from err
    return method.to(device).eval(), config


def _first_two(samples: list) -> list[Tensor]:
    """Collate the first two tensors of each item: [(B, ...), (B, ...)]."""
    return collate_views([list(item)[:2] for item in samples])


def _view_pairs(
    dataset, config: TrainConfig, device: str, limit: int | None = None
) -> Iterator[list[Tensor]] | None:
    """Yield batches [view 1 (B, ...), view 2 (B, ...)] of held-out samples; None: no recipe.

    At most ``limit`` (default ``MAX_VIEW_PAIRS``) samples (a seeded subset of larger splits),
    whose views depend on (seed, i) only. Full-resolution data (streamed folders) gets the
    batched recipe, on ``device``, cut from ``ds[i]`` (the S x S image), not from what the
    trainer reads.
    """
    full = getattr(dataset, "full_resolution", False)
    try:
        if full:
            make = batched_view_fn("pair", dataset.input_shape, **config.view_options)
            items = DrawDataset(dataset, make.num_draws, config.seed, EVAL_VIEW_EPOCH)
        else:
            view_fn = build_view_fn("pair", dataset, **config.view_options)
            items = ViewDataset(dataset, view_fn, config.seed, EVAL_VIEW_EPOCH)
    except ValueError:
        return None
    seed = mix_seed(config.seed, -5, 0)
    limit = MAX_VIEW_PAIRS if limit is None else limit
    index = ev.subset_index(len(dataset), limit, seed).sort().values.tolist()
    load = {"batch_size": eval_batch_size(config, dataset), "num_workers": config.num_workers or 0}
    batches = DataLoader(Subset(items, index), collate_fn=_first_two, **load)
    return (make(x.to(device), u.to(device))[:2] if full else [x, u] for x, u in batches)


def _metrics(train_f, train_y, test_f, test_y, view_f, device) -> dict[str, float | None]:
    skipped = ev.unevaluable(train_y, test_y)  # small or unlabelled splits: say, do not fail
    out: dict[str, float | None] = {"feature_dim": int(test_f.shape[1])}
    if "knn" not in skipped:
        out["knn"] = ev.knn_accuracy(train_f, train_y, test_f, test_y, k=KNN_K)
        out["knn_k"] = min(KNN_K, int(train_f.shape[0]))
    if "linear_probe" not in skipped:
        out["linear_probe"] = ev.linear_probe_accuracy(
            train_f, train_y, test_f, test_y, device=device
        )
    if "separation" not in skipped:
        sep = ev.separation(test_f, test_y)
        out |= {
            "same_similarity": sep["same"],
            "different_similarity": sep["different"],
            "separation_gap": sep["gap"],
        }
    out["alignment"] = ev.alignment(*view_f) if view_f is not None else None
    if "uniformity" not in skipped:
        out["uniformity"] = ev.uniformity(test_f)
        out["effective_rank"] = ev.effective_rank(test_f)
    return out


def _photo_subsets(train_ds, test_ds, limits: tuple[int, int], seed: int, stage) -> tuple:
    """Return seeded subsets of at most ``limits`` (training, held-out) samples; say so."""
    if len(train_ds) <= limits[0] and len(test_ds) <= limits[1]:
        return train_ds, test_ds
    subsets = tuple(
        Subset(ds, ev.subset_index(len(ds), limit, mix_seed(seed, -6, k)).sort().values.tolist())
        for k, (ds, limit) in enumerate(zip((train_ds, test_ds), limits, strict=True))
    )
    stage(
        f"photos: a seeded subset of {len(subsets[0])} training and {len(subsets[1])} held-out "
        "samples (contrastkit eval RUN evaluates them all)"
    )
    return subsets


def eval_splits(config: TrainConfig) -> tuple[Any, Any]:
    """Return the training and held-out splits a run is evaluated on (no views, with labels).

    Raises:
        ValueError: ``config.data`` was the user's own data (``contrastkit.fit``).
    """
    if config.data.startswith(PYTHON_OBJECT):
        raise ValueError(
            f"data {config.data!r} was a Python object given to contrastkit.fit, which "
            "config.json cannot rebuild: evaluate it from Python (fit returns the metrics)"
        )
    size = image_size_for(config.data, getattr(config, "image_size", None))
    train_ds = build_dataset(config.data, train=True, seed=config.seed, image_size=size)
    return train_ds, build_dataset(config.data, train=False, seed=config.seed, image_size=size)


def evaluate_run(
    method: Method,
    config: TrainConfig,
    run_dir: str | os.PathLike,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
    *,
    splits: tuple[Any, Any] | None = None,
    initial: Method | None = None,
    photo_limits: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Evaluate h of the trained method, of its random initialisation and of the raw input.

    Streams both splits through the encoders, computes kNN and linear-probe accuracy, separation
    (same/different-label cosine and gap), uniformity and effective rank on the held-out split,
    alignment on at most ``MAX_VIEW_PAIRS`` of it, and draws the embedding map and similarity
    histograms of at most ``MAX_PLOT_POINTS`` into ``run_dir``. The raw input of images above
    32 px is area-downsampled (``evaluation.metrics.raw_input``).

    Args:
        progress: called with one line per stage (``"evaluation: ..."``); default: log at INFO.
        splits: (training, held-out) datasets instead of ``eval_splits(config)``, and
            initial: the method before training instead of ``build_method(config)``
            (``contrastkit.fit`` with the user's own Dataset or nn.Module).
        photo_limits: (training, held-out) at most this many samples of each split, a subset
            fixed by the seed, when the data is full-resolution photos (``full_resolution``;
            ``PHOTO_EVAL_LIMITS`` at the end of ``train``); None: every sample.

    Returns:
        ``{"raw": {...}, "random_init": {...}, "trained": {...}, "raw_label": str,
        "skipped": {metric: reason}, "eval_seconds": float}``; ``raw_label`` names the raw
        baseline ("raw input (32x32 pixels)" when downsampled); ``skipped`` the label metrics
        the split cannot support (``evaluation.metrics.unevaluable``).
    """
    start = time.perf_counter()
    say = progress or logger.info

    def stage(text: str) -> None:
        say(f"evaluation: {text} ({time.perf_counter() - start:.1f} s)")

    train_ds, test_ds = splits or eval_splits(config)
    stage(f"{len(train_ds)} training and {len(test_ds)} held-out samples of {config.data}")
    full_test, pair_limit = test_ds, None  # the views and class names need the whole split
    if photo_limits is not None and getattr(test_ds, "full_resolution", False):
        train_ds, test_ds = _photo_subsets(train_ds, test_ds, photo_limits, config.seed, stage)
        pair_limit = min(MAX_VIEW_PAIRS, photo_limits[1])
    initial = build_method(config) if initial is None else initial
    encoders = {"raw": None, "random_init": initial.to(device), "trained": method}
    shape = tuple(config.input_shape or test_ds[0][0].shape)
    raw = ev.raw_shape(shape)  # the raw input of large images is downsampled: say so
    labels = {**LABELS, "raw": f"raw input ({raw[1]}x{raw[2]} pixels)"} if raw != shape else LABELS
    pairs = _view_pairs(full_test, config, device, pair_limit)
    view_f = dict.fromkeys(encoders) if pairs is None else ev.embed_views(encoders, pairs, device)
    load = {
        "batch_size": eval_batch_size(config, full_test),
        "num_workers": config.num_workers or 0,
    }
    results: dict[str, Any] = {}
    test_features: dict[str, Tensor] = {}
    for name, encoder in encoders.items():
        stage(f"features of the {labels[name]}")
        if encoder is None:
            train_f, train_y = ev.raw_features(train_ds, **load)
            test_f, test_y = ev.raw_features(test_ds, **load)
        else:
            train_f, train_y = ev.embed_dataset(encoder, train_ds, device=device, **load)
            test_f, test_y = ev.embed_dataset(encoder, test_ds, device=device, **load)
        stage(f"kNN, linear probe and separation of the {labels[name]}")
        results[name] = _metrics(train_f, train_y, test_f, test_y, view_f[name], device)
        test_features[name] = test_f
    results["raw_label"] = labels["raw"]
    results["skipped"] = ev.unevaluable(train_y, test_y)
    for reason in dict.fromkeys(results["skipped"].values()):  # one line per reason
        names = [m.replace("_", " ") for m, r in results["skipped"].items() if r == reason]
        logger.warning("evaluation: skipped %s: %s", ", ".join(names), reason)
    if "separation" not in results["skipped"]:  # the plots compare same- and other-label pairs
        stage("plots")
        keep = ev.subset_index(len(test_y), MAX_PLOT_POINTS, mix_seed(config.seed, -5, 1))
        titles = {"raw": labels["raw"], "random_init": "random init", "trained": "trained"}
        panels = {titles[name]: f[keep] for name, f in test_features.items()}
        y, names, out = test_y[keep], getattr(full_test, "class_names", None), Path(run_dir)
        plots.plot_embedding_maps(panels, y, out / "embedding_map.png", names)
        if config.tsne:
            plots.plot_embedding_maps(panels, y, out / "embedding_tsne.png", names, method="tsne")
        plots.plot_similarity_histograms(panels, y, out / "similarity_hist.png")
    results["eval_seconds"] = time.perf_counter() - start
    stage("done")
    return results


__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "MAX_PLOT_POINTS",
    "MAX_VIEW_PAIRS",
    "METRICS_FILE",
    "SUMMARY_FILE",
    "build_method",
    "check_out_dir",
    "create_run_dir",
    "eval_batch_size",
    "eval_splits",
    "evaluate_run",
    "load_run",
    "read_config",
    "read_metrics",
    "truncate_metrics",
    "write_json",
]

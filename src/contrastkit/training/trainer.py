"""The trainer: one loop for every method, with exact resume.

Read top to bottom: ``train`` checks everything before creating the run folder, ``_fit`` runs the
loop. Each step: the batch of views (``batches.step_batches``), forward (``method.training_step``),
check the loss is finite, backward, ``method.before_optimizer_step``, clip, optimizer step,
learning-rate schedule (``state.TrainingState``), ``method.after_step`` with the step's outputs;
then the metrics line (``runlog.RunLog``), the checkpoint and the progress bar.

Everything random is a pure function of (seed, step) or (seed, epoch, sample): the data order and
views (``contrastkit.training.batches``) and the global RNG before each forward pass. A checkpoint
holds model, optimizer, scheduler and scaler state, so a run killed at any moment and resumed from
its last checkpoint ends with the same weights and the same ``metrics.jsonl`` as an uninterrupted
run.

Step numbers: the hooks receive the 0-based index of the optimizer step being taken
(``after_step(step, total_steps, outputs)`` runs after the update of step ``step``); metrics and
checkpoints count completed steps (1-based).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from contrastkit import distributed
from contrastkit.checkpoint import load_checkpoint, remove_stale_temp_files
from contrastkit.data import build_dataset
from contrastkit.data.captions import CaptionedImages
from contrastkit.losses import info_nce_bound
from contrastkit.methods import Method
from contrastkit.training import ddp, plots
from contrastkit.training.batches import mix_seed, step_batches
from contrastkit.training.config import TrainConfig, check_config, resumable_fields
from contrastkit.training.gradcache import cached_step, check_gradient_cache
from contrastkit.training.resolve import resolve_config
from contrastkit.training.runlog import Progress, RunLog
from contrastkit.training.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    build_method,
    check_out_dir,
    create_run_dir,
    evaluate_run,
    load_run,
    read_config,
    read_metrics,
    truncate_metrics,
    write_json,
)
from contrastkit.training.state import RunLength, TrainingDiverged, TrainingState
from contrastkit.training.sync_batchnorm import convert_sync_batch_norm
from contrastkit.transforms import BatchedViews, ViewFn, build_batched_view_fn, build_view_fn

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """Return the torch device for "auto", "cpu", "cuda", "cuda:N" or "mps".

    Raises:
        ValueError: the device is not available on this machine.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: MPS is not available here; use --device cpu")
    return torch.device(name)


def prepare(config: TrainConfig) -> tuple[TrainConfig, Any, Method, Any]:
    """Check the config, load the data and build the method, changing nothing on disk.

    Returns:
        ``(resolved config, dataset, method, view_fn)``.

    Raises:
        ValueError: any bad setting, named with its value and what was expected.
    """
    check_config(config)
    dataset = build_dataset(config.data, train=True, seed=config.seed)
    if len(dataset) == 0:
        raise ValueError(f"--data {config.data} has no samples")
    config = resolve_config(config, dataset)
    if config.batch_size > len(dataset):
        raise ValueError(
            f"--batch-size {config.batch_size} is larger than the dataset "
            f"({len(dataset)} samples of {config.data}); use at most {len(dataset)}"
        )
    resolve_device(config.device)
    local_batch = ddp.local_batch_size(config.batch_size)  # world size must divide it
    method = build_method(config)
    method.check_batch_size(local_batch)
    if config.chunk_size is not None:
        check_gradient_cache(method, config.chunk_size)
    view_fn = view_fn_of(config, method.view_recipe, dataset)
    if method.view_recipe == "image_text":  # CLIP: each sample also carries its caption ids
        dataset = CaptionedImages(dataset, method.tokenizer)
    return config, dataset, method, view_fn


def view_fn_of(config: TrainConfig, recipe: str, dataset) -> ViewFn | BatchedViews:
    """Return the view function of ``recipe`` in the resolved ``config.view_pipeline``.

    Raises:
        ValueError: "batched" for a recipe or dataset that has none, or bad view options.
    """
    if config.view_pipeline == "batched":
        return build_batched_view_fn(recipe, dataset, **config.view_options)
    return build_view_fn(recipe, dataset, **config.view_options)


def train(config: TrainConfig, *, overwrite: bool = False) -> Path:
    """Train ``config.method`` on ``config.data`` into a new run folder; return the folder.

    Every setting is checked (and the data loaded) before the folder is created, so a mistake
    leaves nothing behind. ``overwrite`` replaces the files of an existing run folder.

    Raises:
        ValueError: a bad setting, or ``config.out`` exists without ``overwrite``.
        OSError: the output folder is not writable.
        TrainingDiverged: the loss became non-finite.
    """
    timeout = timedelta(seconds=config.dist_timeout)
    with ddp.process_group(config.backend, timeout=timeout):  # under torchrun; nothing otherwise
        config, dataset, method, view_fn = prepare(config)
        config.out = distributed.broadcast_object(config.out)  # rank 0's folder name
        run_dir = check_out_dir(config.out, overwrite=overwrite)
        distributed.barrier()  # every process checked the folder before rank 0 creates it
        if distributed.is_main_process():
            run_dir = create_run_dir(config.out, overwrite=overwrite)
            write_json(run_dir / CONFIG_FILE, config.to_dict())
        return _fit(config, dataset, method, view_fn, run_dir, saved=None)


def resume(run_dir: str | os.PathLike, *, device: str | None = None, **overrides: Any) -> Path:
    """Continue the run in ``run_dir`` from its checkpoint; return the folder.

    Args:
        run_dir: a folder written by ``train``.
        device: run on another device than the saved one (the result then may differ slightly).
        **overrides: fields that do not change the result (``config.resumable_fields()``:
            ``eval``, ``progress``, ``tsne``, ``num_workers``, ``eval_batch_size``,
            ``dist_timeout``).

    Raises:
        ValueError: not a run folder, or a missing, corrupted or foreign checkpoint.
    """
    allowed = resumable_fields()
    if set(overrides) - allowed:
        changed = sorted(set(overrides) - allowed)
        raise ValueError(f"--resume continues the saved settings; cannot change {changed}")
    run_dir = Path(run_dir).expanduser()
    saved = read_config(run_dir)
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if device is not None:
        changes["device"] = device
    timeout = timedelta(seconds=changes.get("dist_timeout", saved.dist_timeout))
    with ddp.process_group(saved.backend, timeout=timeout):
        config, dataset, method, view_fn = prepare(
            TrainConfig.from_dict({**saved.to_dict(), **changes, "out": str(run_dir)})
        )
        if not os.access(run_dir, os.W_OK):
            raise PermissionError(f"--resume {run_dir}: the folder is not writable")
        if distributed.is_main_process():  # the only writer of the checkpoint
            for stale in remove_stale_temp_files(run_dir / CHECKPOINT_FILE):
                logger.info("removed %s, left by a checkpoint write that was killed", stale)
        return _fit(config, dataset, method, view_fn, run_dir, saved=checkpoint)


def _fit(config, dataset, method, view_fn, run_dir: Path, saved: dict | None) -> Path:
    """Train from step 0 (``saved`` None) or from a checkpoint to the end; return ``run_dir``."""
    device = ddp.device_for(resolve_device(config.device))  # cuda:LOCAL_RANK
    method.to(device).train()
    if config.sync_bn:
        convert_sync_batch_norm(method)  # before the optimizer: new BatchNorm parameters
    training_step = ddp.data_parallel(method)  # DDP under torchrun
    main = distributed.is_main_process()  # only rank 0 writes files, logs and progress
    length = RunLength.of(config, len(dataset))
    state = TrainingState(method, config, length, device)
    method.setup(length.total, length.per_epoch)
    if saved is not None:
        state.restore(saved, run_dir / CHECKPOINT_FILE)
        logger.info("resuming %s at step %d of %d", run_dir, state.step, length.total)
    if main:
        truncate_metrics(run_dir, state.step)  # drop the lines after the checkpoint
    clip = config.clip_grad or method.default_clip_grad  # DINO's paper: 3.0
    checkpoint_every = config.checkpoint_every or length.per_epoch
    batches = step_batches(
        dataset,
        view_fn,
        seed=config.seed,
        start_step=state.step,
        total_steps=length.total,
        batch_size=ddp.local_batch_size(config.batch_size),
        num_workers=config.num_workers,
        rank=distributed.rank(),
        world_size=distributed.world_size(),
        device=device,
    )
    log = RunLog(run_dir / METRICS_FILE if main else None, config.log_every, length)
    bar = Progress(config.progress and main, length, state.step, config.batch_size)
    state.start_clock()
    with log, bar:
        for batch in batches:
            step = state.step  # 0-based index of the step being taken
            torch.manual_seed(mix_seed(config.seed, step, -3))  # the method's own randomness
            out, lr = _optimisation_step(state, method, training_step, batch.views, config, clip)
            method.after_step(step, length.total, out)  # EMA, queue, center: from ``out``
            state.step += 1
            loss = log.record(state, out, lr)
            if main and (state.step % checkpoint_every == 0 or state.step == length.total):
                state.save(run_dir / CHECKPOINT_FILE, config)
            bar.advance(loss, lr)
    if main:
        _finish(config, method, run_dir, device, length, state.seconds())
    return run_dir


def _optimisation_step(
    state: TrainingState, method: Method, training_step, views, config: TrainConfig, clip
) -> tuple[dict[str, Any], float]:
    """Forward, backward and update on one batch; return the step's outputs and its lr.

    With ``config.chunk_size`` the batch is embedded in chunks (gradient caching, the same
    gradient); otherwise ``training_step`` (the method, under DDP when distributed) runs once.
    """
    state.optimizer.zero_grad(set_to_none=True)
    if config.chunk_size is not None:
        out = cached_step(
            method, views, config.chunk_size, backward=state.backward, autocast=state.autocast
        )
    else:
        with state.autocast():
            out = training_step(views)
        state.backward(out["loss"])
    lr = state.optimizer_step(clip, before=method.before_optimizer_step)
    return out, lr


def _finish(config, method, run_dir: Path, device, length: RunLength, elapsed: float) -> None:
    """Draw the loss curve, evaluate the encoder (unless ``--no-eval``), write summary.json."""
    total = length.total
    records = read_metrics(run_dir)
    step_records = [r for r in records if r.get("event") == "step"]
    plots.plot_loss(records, run_dir / "loss.png")
    summary: dict[str, Any] = {
        "method": config.method,
        "data": config.data,
        "backbone": config.backbone,
        "steps": total,
        "epochs": total / length.per_epoch,
        "batch_size": config.batch_size,
        "first_loss": step_records[0]["loss"] if step_records else None,
        "final_loss": step_records[-1]["loss"] if step_records else None,
        "train_seconds": elapsed,
        "samples_per_s": total * config.batch_size / max(elapsed, 1e-9),
    }
    negatives = method.num_negatives(config.batch_size)  # None: the loss has no negatives
    if negatives is not None:
        summary["num_negatives"] = negatives
        summary["info_nce_bound"] = info_nce_bound(negatives)
    if config.eval:
        method.eval()
        summary["eval"] = evaluate_run(method, config, run_dir, str(device))
    write_json(run_dir / SUMMARY_FILE, summary)


__all__ = [
    "TrainConfig",
    "TrainingDiverged",
    "load_run",
    "prepare",
    "resolve_device",
    "resume",
    "train",
    "view_fn_of",
]

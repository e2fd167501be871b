"""The trainer: one loop for every method, with exact resume.

Read top to bottom: ``train`` checks everything before creating the run folder, ``_fit`` runs the
loop. Each step: make the batch of views, forward (``method.training_step``), check the loss is
finite, backward, ``method.before_optimizer_step``, clip, optimizer step, learning-rate schedule,
``method.after_step``; then log, checkpoint, and advance the progress bar.

Everything random is a pure function of (seed, step) or (seed, epoch, sample): the data order and
views (``contrastkit.training.batches``) and the global RNG before each forward pass. A checkpoint
holds
model, optimizer, scheduler and scaler state, so a run killed at any moment and resumed from its
last checkpoint ends with the same weights and the same ``metrics.jsonl`` as an uninterrupted run.

Step numbers: the hooks receive the 0-based index of the optimizer step being taken
(``after_step(step, total_steps)`` runs after the update of step ``step``); metrics and
checkpoints count completed steps (1-based).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from contrastkit import distributed
from contrastkit.checkpoint import load_checkpoint, save_checkpoint
from contrastkit.data import build_dataset
from contrastkit.data.captions import CaptionedImages
from contrastkit.losses import info_nce_bound
from contrastkit.methods import Method
from contrastkit.training import ddp, plots
from contrastkit.training.batches import epoch_batches, mix_seed, steps_per_epoch
from contrastkit.training.config import TrainConfig, check_config, resolve_config
from contrastkit.training.gradcache import cached_step, check_gradient_cache
from contrastkit.training.monitor import CollapseMonitor
from contrastkit.training.optim import build_optimizer, build_scheduler
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
from contrastkit.training.sync_batchnorm import convert_sync_batch_norm
from contrastkit.transforms import BatchedViews, ViewFn, build_batched_view_fn, build_view_fn

logger = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):  # noqa: N818 (the name says what happened)
    """The loss became NaN or infinite; the last good checkpoint is left untouched.

    Attributes:
        step: the 1-based step whose loss was not finite.
        checkpoint: the last good checkpoint (None when none was written yet).
        checkpoint_step: the step that checkpoint holds.
    """

    def __init__(self, step: int, loss: float, checkpoint: Path | None, checkpoint_step: int):
        where = (
            f"last good checkpoint: {checkpoint} (step {checkpoint_step})"
            if checkpoint is not None
            else "no checkpoint was written yet"
        )
        super().__init__(
            f"loss is {loss} at step {step}; training stopped ({where}). "
            "Try a lower --lr, --clip-grad or a longer warmup."
        )
        self.step, self.checkpoint, self.checkpoint_step = step, checkpoint, checkpoint_step


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


def _amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


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
    view_fn = _view_fn(config, method.view_recipe, dataset)
    if method.view_recipe == "image_text":  # CLIP: each sample also carries its caption ids
        dataset = CaptionedImages(dataset, method.tokenizer)
    return config, dataset, method, view_fn


def _view_fn(config: TrainConfig, recipe: str, dataset) -> ViewFn | BatchedViews:
    """Return the view function of the resolved ``config.view_pipeline``.

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
    with ddp.process_group(config.backend):  # under torchrun; nothing on one process
        config, dataset, method, view_fn = prepare(config)
        config.out = distributed.broadcast_object(config.out)  # rank 0's folder name
        run_dir = check_out_dir(config.out, overwrite=overwrite)
        distributed.barrier()  # every process checked the folder before rank 0 creates it
        if distributed.is_main_process():
            run_dir = create_run_dir(config.out, overwrite=overwrite)
            write_json(run_dir / CONFIG_FILE, config.to_dict())
        return _fit(config, dataset, method, view_fn, run_dir, state=None)


def resume(run_dir: str | os.PathLike, *, device: str | None = None, **overrides: Any) -> Path:
    """Continue the run in ``run_dir`` from its checkpoint; return the folder.

    Args:
        run_dir: a folder written by ``train``.
        device: run on another device than the saved one (the result then may differ slightly).
        **overrides: fields that do not change the result: ``eval``, ``progress``, ``tsne``,
            ``num_workers``, ``eval_batch_size``.

    Raises:
        ValueError: not a run folder, or a missing, corrupted or foreign checkpoint.
    """
    allowed = {"eval", "progress", "tsne", "num_workers", "eval_batch_size"}
    if set(overrides) - allowed:
        changed = sorted(set(overrides) - allowed)
        raise ValueError(f"--resume continues the saved settings; cannot change {changed}")
    run_dir = Path(run_dir).expanduser()
    saved = read_config(run_dir)
    state = load_checkpoint(run_dir / CHECKPOINT_FILE)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if device is not None:
        changes["device"] = device
    with ddp.process_group(saved.backend):
        config, dataset, method, view_fn = prepare(
            TrainConfig.from_dict({**saved.to_dict(), **changes, "out": str(run_dir)})
        )
        if not os.access(run_dir, os.W_OK):
            raise PermissionError(f"--resume {run_dir}: the folder is not writable")
        return _fit(config, dataset, method, view_fn, run_dir, state=state)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore(method, optimizer, scheduler, scaler, state: dict[str, Any]) -> None:
    try:
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise ValueError(
            f"not a contrastkit checkpoint: it does not match this run's config ({err})"
        ) from err
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])


def _step_record(out: dict, step: int, epoch: int, loss: float, lr: float, monitor) -> dict:
    """Return the metrics line of a logged step: loss, lr, named terms, collapse statistics."""
    record = {"event": "step", "step": step, "epoch": epoch, "loss": loss, "lr": lr}
    for key, value in out.items():
        if key not in ("loss", "embedding") and torch.is_tensor(value) and value.numel() == 1:
            record[key] = float(value)
    embedding = out.get("embedding")
    if embedding is not None:
        embedding = distributed.gather_nograd(embedding)  # the global batch (every process)
    if embedding is not None and embedding.ndim == 2 and embedding.shape[0] >= 2:
        record |= monitor(embedding.float(), step)
    return record


def _fit(config, dataset, method, view_fn, run_dir: Path, state: dict | None) -> Path:
    device = ddp.device_for(resolve_device(config.device))  # cuda:LOCAL_RANK
    method.to(device).train()
    if config.sync_bn:
        convert_sync_batch_norm(method)  # before the optimizer: new BatchNorm parameters
    training_step = ddp.data_parallel(method)  # DDP under torchrun
    main = distributed.is_main_process()  # only rank 0 writes files, logs and progress
    per_epoch = steps_per_epoch(len(dataset), config.batch_size)
    total = config.steps or config.epochs * per_epoch
    warmup = (
        config.warmup_steps
        if config.warmup_steps is not None
        else round(config.warmup_epochs * per_epoch)
    )
    optimizer = build_optimizer(
        method, config.optimizer, config.lr, config.weight_decay, config.momentum
    )
    scheduler = build_scheduler(optimizer, total, warmup, config.schedule, config.min_lr_ratio)
    amp_dtype = _amp_dtype(config.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    method.setup(total, per_epoch)

    step, epoch_loss, epoch_count, elapsed = 0, 0.0, 0, 0.0
    checkpoint_path, checkpoint_step = None, 0
    if state is not None:
        _restore(method, optimizer, scheduler, scaler, state)
        step, elapsed = int(state["step"]), float(state["elapsed"])
        epoch_loss, epoch_count = float(state["epoch_loss"]), int(state["epoch_count"])
        checkpoint_path, checkpoint_step = run_dir / CHECKPOINT_FILE, step
        logger.info("resuming %s at step %d of %d", run_dir, step, total)
    if main:
        truncate_metrics(run_dir, step)

    def autocast():
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    def backward(loss: torch.Tensor) -> None:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(step + 1, value, checkpoint_path, checkpoint_step)
        (scaler.scale(loss) if scaler is not None else loss).backward()

    monitor = CollapseMonitor()
    checkpoint_every = config.checkpoint_every or per_epoch
    show = config.progress and sys.stderr.isatty() and main
    bar = tqdm(total=total, initial=step, unit="step", disable=not show, dynamic_ncols=True)
    metrics_file = open(run_dir / METRICS_FILE if main else os.devnull, "a")  # noqa: SIM115
    session_start = tick = time.perf_counter()
    try:
        while step < total:
            epoch = step // per_epoch
            batches = epoch_batches(
                dataset,
                view_fn,
                seed=config.seed,
                epoch=epoch,
                batch_size=ddp.local_batch_size(config.batch_size),
                start_batch=step % per_epoch,
                num_workers=config.num_workers,
                rank=distributed.rank(),
                world_size=distributed.world_size(),
                device=device,
            )
            for views in batches:
                torch.manual_seed(mix_seed(config.seed, step, -3))  # the method's own randomness
                optimizer.zero_grad(set_to_none=True)
                if config.chunk_size is not None:
                    out = cached_step(
                        method, views, config.chunk_size, backward=backward, autocast=autocast
                    )
                else:
                    with autocast():
                        out = training_step(views)
                    backward(out["loss"])
                if scaler is not None:
                    scaler.unscale_(optimizer)
                method.before_optimizer_step(step)
                clip = config.clip_grad or method.default_clip_grad  # DINO's paper: 3.0
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(method.parameters(), clip)
                lr = next(
                    (g["lr"] for g in optimizer.param_groups if not g["fixed_lr"]),
                    optimizer.param_groups[0]["lr"],
                )
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                method.after_step(step, total)
                step += 1

                out = distributed.mean_over_processes(out)  # logged values: mean over processes
                loss = float(out["loss"].detach())
                epoch_loss, epoch_count = epoch_loss + loss, epoch_count + 1
                if step % config.log_every == 0 or step in (1, total):
                    record = _step_record(out, step, epoch, loss, lr, monitor)
                    metrics_file.write(json.dumps(record) + "\n")
                if step % per_epoch == 0:
                    record = {
                        "event": "epoch",
                        "step": step,
                        "epoch": step // per_epoch,
                        "epoch_loss": epoch_loss / epoch_count,
                    }
                    metrics_file.write(json.dumps(record) + "\n")
                    epoch_loss, epoch_count = 0.0, 0
                metrics_file.flush()
                if main and (step % checkpoint_every == 0 or step == total):
                    session = time.perf_counter() - session_start
                    snapshot = {
                        "model": method.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict() if scaler is not None else {},
                        "step": step,
                        "elapsed": elapsed + session,
                        "epoch_loss": epoch_loss,
                        "epoch_count": epoch_count,
                        "rng": _rng_state(),
                        "config": config.to_dict(),
                    }
                    save_checkpoint(run_dir / CHECKPOINT_FILE, snapshot)
                    checkpoint_path, checkpoint_step = run_dir / CHECKPOINT_FILE, step
                rate = config.batch_size / max(time.perf_counter() - tick, 1e-9)
                tick = time.perf_counter()
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", samples_s=f"{rate:.0f}")
                bar.update(1)
                if step >= total:
                    break
    finally:
        bar.close()
        metrics_file.close()
    elapsed += time.perf_counter() - session_start
    if main:
        _finish(config, method, run_dir, device, total, per_epoch, elapsed)
    return run_dir


def _finish(config, method, run_dir: Path, device, total, per_epoch, elapsed) -> None:
    records = read_metrics(run_dir)
    step_records = [r for r in records if r.get("event") == "step"]
    plots.plot_loss(records, run_dir / "loss.png")
    summary: dict[str, Any] = {
        "method": config.method,
        "data": config.data,
        "backbone": config.backbone,
        "steps": total,
        "epochs": total / per_epoch,
        "batch_size": config.batch_size,
        "first_loss": step_records[0]["loss"] if step_records else None,
        "final_loss": step_records[-1]["loss"] if step_records else None,
        "train_seconds": elapsed,
        "samples_per_s": total * config.batch_size / max(elapsed, 1e-9),
    }
    num_negatives = getattr(method, "num_negatives", None)
    if callable(num_negatives):
        negatives = num_negatives(config.batch_size)
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
]

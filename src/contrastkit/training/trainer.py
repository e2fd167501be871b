"""The trainer: one loop for every method, with exact resume.

Read top to bottom: ``train`` checks everything before creating the run folder, ``_fit`` runs the
loop. Each step: the batch of views (``batches.step_batches``), forward (``method.training_step``),
check the loss is finite, backward, ``method.before_optimizer_step``, clip, optimizer step,
learning-rate schedule (``state.TrainingState``), ``method.after_step`` with the step's outputs;
then the metrics line (``runlog.RunLog``), the online kNN evaluation when due
(``online_eval.OnlineEval``, before the checkpoint so that a checkpointed step has its line),
the checkpoint and the progress (``runlog.Progress``).

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
from collections.abc import Callable
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
from contrastkit.training import ddp, plots, presets
from contrastkit.training.batches import mix_seed, step_batches
from contrastkit.training.config import (
    PYTHON_OBJECT,
    TrainConfig,
    changeable_fields,
    check_config,
    resumable_fields,
)
from contrastkit.training.gradcache import cached_step, check_gradient_cache
from contrastkit.training.in_flight import naming_dead_workers
from contrastkit.training.loggers import build_sinks, check_logger
from contrastkit.training.malloc import ENV as MALLOC_ENV
from contrastkit.training.malloc import keep_freed_memory
from contrastkit.training.online_eval import OnlineEval
from contrastkit.training.precision import describe_precision, memory_format_of
from contrastkit.training.preflight import preflight
from contrastkit.training.resolve import resolve_config
from contrastkit.training.runlog import Progress, RunLog, stderr_line
from contrastkit.training.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    PHOTO_EVAL_LIMITS,
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


def prepare(
    config: TrainConfig, *, dataset=None, backbone: torch.nn.Module | None = None
) -> tuple[TrainConfig, Any, Method, Any]:
    """Check the config, load the data and build the method, changing nothing on disk.

    ``dataset`` (following the ``contrastkit.data`` contract) and ``backbone`` (a module with
    ``.feature_dim``) replace what ``config.data`` and ``config.backbone`` name
    (``contrastkit.fit``: the user's own objects).

    Returns:
        ``(resolved config, dataset, method, view_fn)``; the method is set up for the run's
        length (``Method.setup``) and has taken one step without gradient on two samples
        (``preflight``), so settings that clash fail here.

    Raises:
        ValueError: any bad setting, named with its value and what was expected.
    """
    check_config(config)
    check_logger(config.logger)  # a missing tensorboard fails here, before any folder exists
    if dataset is None:
        options = {"seed": config.seed, "download": config.download}
        dataset = build_dataset(config.data, image_size=config.image_size, **options)
    if len(dataset) < 2:
        raise ValueError(
            f"--data {config.data} holds {len(dataset)} training sample(s); training needs at "
            "least 2 (each sample's views are told apart from another's): add samples "
            "(a folder holds out about 20% of its images for evaluation)"
        )
    config = resolve_config(config, dataset)
    if config.batch_size > len(dataset):
        raise ValueError(
            f"--batch-size {config.batch_size} is larger than the dataset "
            f"({len(dataset)} samples of {config.data}); use at most {len(dataset)}"
        )
    resolve_device(config.device)
    local_batch = ddp.local_batch_size(config.batch_size)  # world size must divide it
    method = build_method(config, backbone)
    method.check_batch_size(local_batch)
    if config.chunk_size is not None:
        check_gradient_cache(method, config.chunk_size)
    view_fn = view_fn_of(config, method.view_recipe, dataset)
    if method.view_recipe == "image_text":  # CLIP: each sample also carries its caption ids
        dataset = CaptionedImages(dataset, method.tokenizer)
    length = RunLength.of(config, dataset)
    method.setup(length.total, length.per_epoch)  # DINO's schedules need the run's length
    preflight(method, dataset, view_fn, config.seed)  # settings that clash fail here, not later
    return config, dataset, method, view_fn


def view_fn_of(config: TrainConfig, recipe: str, dataset) -> ViewFn | BatchedViews:
    """Return the view function of ``recipe`` in the resolved ``config.view_pipeline``.

    Raises:
        ValueError: "batched" for a recipe or dataset that has none, or bad view options.
    """
    if config.view_pipeline == "batched":
        return build_batched_view_fn(recipe, dataset, **config.view_options)
    return build_view_fn(recipe, dataset, **config.view_options)


def train(
    config: TrainConfig,
    *,
    overwrite: bool = False,
    on_start: Callable[[Path], None] | None = None,
    dataset=None,
    backbone: torch.nn.Module | None = None,
) -> Path:
    """Train ``config.method`` on ``config.data`` into a new run folder; return the folder.

    Every setting is checked (and the data loaded) before the folder is created, so a mistake
    leaves nothing behind. ``overwrite`` replaces the files of an existing run folder.
    ``on_start(run_dir)`` is called on rank 0 once the folder exists, before the first step
    (the command line prints the folder there). ``dataset`` and ``backbone``: as ``prepare``.

    Raises:
        ValueError: a bad setting, or ``config.out`` exists without ``overwrite``.
        OSError: the output folder is not writable.
        TrainingDiverged: the loss became non-finite.
    """
    timeout = timedelta(seconds=config.dist_timeout)
    with ddp.process_group(config.backend, timeout=timeout):  # under torchrun; nothing otherwise
        config, dataset, method, view_fn = prepare(config, dataset=dataset, backbone=backbone)
        config.out = distributed.broadcast_object(config.out)  # rank 0's folder name
        run_dir = check_out_dir(config.out, overwrite=overwrite)
        distributed.barrier()  # every process checked the folder before rank 0 creates it
        if distributed.is_main_process():
            run_dir = create_run_dir(config.out, config.to_dict(), overwrite=overwrite)
            presets.announce(config)  # "recipe: moco-shapes (built in; ...)"
            if on_start is not None:
                on_start(run_dir)
        return _fit(config, dataset, method, view_fn, run_dir, saved=None)


def resume(
    run_dir: str | os.PathLike,
    *,
    device: str | None = None,
    on_start: Callable[[Path], None] | None = None,
    **overrides: Any,
) -> Path:
    """Continue the run in ``run_dir`` from its checkpoint; return the folder.

    A run killed before its first checkpoint (no checkpoint, no summary) starts again from
    step 0 with its saved settings.

    Args:
        run_dir: a folder written by ``train``.
        device: run on another device than the saved one (the result then may differ slightly).
        on_start: called with the folder on rank 0 once everything is checked, before the
            first step.
        **overrides: fields that do not change the weights (``config.resumable_fields()``:
            ``eval``, ``eval_every``, ``progress``, ``logger``, ``tsne``, ``num_workers``,
            ``eval_batch_size``, ``dist_timeout``), and those that do but may change
            mid-run (``config.changeable_fields()``: ``lr``, ``weight_decay``, ``clip_grad``,
            e.g. a lower lr for a diverged run). A change of the latter takes effect at the
            checkpoint's step and is appended to ``resumed_changes`` in ``config.json``.

    Raises:
        ValueError: not a run folder, a corrupted or foreign checkpoint, or a run on Python
            objects (``contrastkit.fit`` with the user's own Dataset or nn.Module).
    """
    allowed = resumable_fields() | changeable_fields()
    if set(overrides) - allowed:
        changed = sorted(set(overrides) - allowed)
        raise ValueError(f"--resume continues the saved settings; cannot change {changed}")
    run_dir = Path(run_dir).expanduser()
    saved = read_config(run_dir)
    objects = [f for f in ("data", "backbone") if str(getattr(saved, f)).startswith(PYTHON_OBJECT)]
    if objects:  # contrastkit.fit with the user's own Dataset or nn.Module
        raise ValueError(
            f"--resume {run_dir}: its {' and '.join(objects)} were Python objects given to "
            "contrastkit.fit, which config.json cannot rebuild; train it again from Python"
        )
    checkpoint = None
    if (run_dir / CHECKPOINT_FILE).exists() or (run_dir / SUMMARY_FILE).exists():
        checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE)  # names what is wrong
    changes = {k: v for k, v in overrides.items() if v is not None}
    if device is not None:
        changes["device"] = device
    values = {**saved.to_dict(), **changes, "out": str(run_dir)}
    values["resumed_changes"] = saved.resumed_changes + _recorded_changes(
        saved, changes, step=int(checkpoint["step"]) if checkpoint else 0
    )
    timeout = timedelta(seconds=changes.get("dist_timeout", saved.dist_timeout))
    with ddp.process_group(saved.backend, timeout=timeout):
        config, dataset, method, view_fn = prepare(TrainConfig.from_dict(values))
        if not os.access(run_dir, os.W_OK):
            raise PermissionError(f"--resume {run_dir}: the folder is not writable")
        if distributed.is_main_process():  # the only writer of the checkpoint
            for stale in remove_stale_temp_files(run_dir / CHECKPOINT_FILE):
                logger.info("removed %s, left by a checkpoint write that was killed", stale)
            if checkpoint is None:
                logger.info("%s has no checkpoint yet: starting again from step 0", run_dir)
            if config.resumed_changes != saved.resumed_changes:
                write_json(run_dir / CONFIG_FILE, config.to_dict())
                logger.info("changed at step %s: %s", *_change_text(config.resumed_changes[-1]))
            if on_start is not None:
                on_start(run_dir)
        return _fit(config, dataset, method, view_fn, run_dir, saved=checkpoint)


def _recorded_changes(saved: TrainConfig, changes: dict[str, Any], step: int) -> list[dict]:
    """Return ``[{"step": step, field: [before, after], ...}]`` for the result-changing fields."""
    changed = {
        name: [getattr(saved, name), value]
        for name, value in changes.items()
        if name in changeable_fields() and value != getattr(saved, name)
    }
    return [{"step": step, **changed}] if changed else []


def _change_text(change: dict) -> tuple[int, str]:
    fields_changed = (f"{k} {v[0]} -> {v[1]}" for k, v in change.items() if k != "step")
    return change["step"], ", ".join(fields_changed)


def _fit(config, dataset, method, view_fn, run_dir: Path, saved: dict | None) -> Path:
    """Train from step 0 (``saved`` None) or from a checkpoint to the end; return ``run_dir``."""
    device = ddp.device_for(resolve_device(config.device))  # cuda:LOCAL_RANK
    method.to(device, memory_format=memory_format_of(config.memory_format)).train()
    if config.sync_bn:
        convert_sync_batch_norm(method)  # before the optimizer: new BatchNorm parameters
    training_step = ddp.data_parallel(method)  # DDP under torchrun
    main = distributed.is_main_process()  # only rank 0 writes files, logs and progress
    kept = keep_freed_memory()  # every step reuses the memory of the one before
    if main:
        logger.info(describe_precision(config.amp, config.memory_format, device))
        if kept:
            logger.info("memory: freed memory kept for reuse (%s=system: glibc's)", MALLOC_ENV)
    length = RunLength.of(config, dataset)
    state = TrainingState(method, config, length, device)
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
        decode=config.decode,
        rank=distributed.rank(),
        world_size=distributed.world_size(),
        device=device,
        labels=method.needs_labels,  # the supervised yardstick: y (B,) after the views
    )
    sinks = build_sinks(config.logger, run_dir) if main else ()  # --logger tensorboard
    log = RunLog(run_dir / METRICS_FILE if main else None, config.log_every, length, sinks)
    online = OnlineEval.of(config, length.total, device) if main else None  # rank 0 alone
    bar = Progress(config.progress and main, length, state.step, config.batch_size)
    state.start_clock()
    with log, bar, naming_dead_workers():
        for batch in batches:
            step = state.step  # 0-based index of the step being taken
            torch.manual_seed(mix_seed(config.seed, step, -3))  # the method's own randomness
            out, lr = _optimisation_step(state, method, training_step, batch.views, config, clip)
            method.after_step(step, length.total, out)  # EMA, queue, center: from ``out``
            state.step += 1
            loss = log.record(state, out, lr)
            if online is not None and online.due(state.step):
                knn = online(method)  # leaves the RNG and train mode as they were
                log.evaluation(state.step, knn)
                bar.evaluated(knn)
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
    negatives = method.num_negatives(config.batch_size)  # None: the loss has no negatives
    bound = None if negatives is None else info_nce_bound(negatives)
    title = f"{config.method} on {config.data}: training loss"
    plots.plot_loss(records, run_dir / "loss.png", bound=bound, title=title)
    evals = [r for r in records if r.get("event") == "eval"]
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
    if negatives is not None:
        summary["num_negatives"] = negatives
        summary["info_nce_bound"] = bound
    if evals:
        summary["online_knn"] = evals[-1]["knn"]
    if config.eval:
        method.eval()
        report = stderr_line if config.progress else _silent
        summary["eval"] = evaluate_run(
            method, config, run_dir, str(device), progress=report, photo_limits=PHOTO_EVAL_LIMITS
        )
    if evals:
        final = summary.get("eval", {})
        references = {
            f"{name} (final evaluation)": final[key]["knn"]
            for key, name in (("random_init", "random init"), ("raw", "raw input"))
            if final.get(key, {}).get("knn") is not None
        }
        plots.plot_knn(records, run_dir / "knn.png", references)
    write_json(run_dir / SUMMARY_FILE, summary)


def _silent(text: str) -> None:
    """Report nothing (``--quiet``)."""


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

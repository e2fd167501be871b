"""The training state: what a checkpoint holds, and the optimisation step that moves it on.

``TrainingState`` gathers the model, its optimizer, the learning-rate scheduler, the AMP gradient
scaler and the counters (steps taken, seconds trained, the running epoch loss). One update is
``backward(loss)`` (after the forward pass under ``autocast()``) then ``optimizer_step(clip)``;
``snapshot()`` returns the checkpoint dict and ``restore()`` loads one back, RNG included, so a
run resumed from its checkpoint continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.checkpoint import save_checkpoint
from contrastkit.training.batches import steps_per_epoch
from contrastkit.training.config import TrainConfig
from contrastkit.training.optim import build_optimizer, build_scheduler, scheduled_lr
from contrastkit.training.precision import auto_amp


class TrainingDiverged(RuntimeError):  # noqa: N818 (the name says what happened)
    """The loss became NaN or infinite; the last good checkpoint is left untouched.

    Attributes:
        step: the 1-based step whose loss was not finite.
        checkpoint: the last good checkpoint (None when none was written yet).
        checkpoint_step: the step that checkpoint holds.
    """

    def __init__(self, step: int, loss: float, checkpoint: Path | None, checkpoint_step: int):
        if checkpoint is not None:
            where = f"last good checkpoint: {checkpoint} (step {checkpoint_step})"
            remedy = (
                "Continue from it with a lower rate (contrastkit train --resume "
                f"{Path(checkpoint).parent} --lr LOWER, or --clip-grad), or start again with a "
                "longer warmup."
            )
        else:
            where = "no checkpoint was written yet"
            remedy = "Start again with a lower --lr, --clip-grad or a longer warmup."
        super().__init__(f"loss is {loss} at step {step}; training stopped ({where}). {remedy}")
        self.step, self.checkpoint, self.checkpoint_step = step, checkpoint, checkpoint_step


@dataclass(frozen=True)
class RunLength:
    """How long a run is, in optimizer steps.

    Attributes:
        per_epoch: full global batches in one pass over the data.
        total: steps in the whole run (``config.steps``, else epochs x per_epoch).
        warmup: linear warmup steps (``config.warmup_steps``, else from warmup_epochs).
    """

    per_epoch: int
    total: int
    warmup: int

    @classmethod
    def of(cls, config: TrainConfig, dataset) -> RunLength:
        """Return the length of a resolved ``config`` on ``dataset`` (or its sample count).

        Sharded data (``dataset.shard_sizes``) has the epoch of ``batches.steps_per_epoch``.
        """
        shards = getattr(dataset, "shard_sizes", None)
        num_samples = dataset if isinstance(dataset, int) else len(dataset)
        if shards is None:
            per_epoch = steps_per_epoch(num_samples, config.batch_size)
        else:  # each process takes its share of the global batch from its own shards
            world = distributed.world_size()
            per_epoch = steps_per_epoch(num_samples, config.batch_size // world, world, shards)
        total = config.steps or config.epochs * per_epoch
        warmup = config.warmup_steps
        if warmup is None:
            warmup = round(config.warmup_epochs * per_epoch)
        return cls(per_epoch, total, warmup)


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """Return the autocast dtype of ``--amp mode`` on ``device`` (None: full precision).

    "auto" is ``training.precision.auto_amp``: bf16 on CUDA where supported and on a CPU with
    bf16 instructions, fp16 on older CUDA, full precision elsewhere.
    """
    if mode == "auto":
        mode = auto_amp(device)
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def rng_state() -> dict[str, Any]:
    """Return the global RNG states (CPU, and CUDA once it is in use)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class TrainingState:
    """The model and everything that moves with it during training.

    Args:
        model: a module with ``parameter_groups()`` (every ``Method``), on ``device``.
        config: the resolved config (optimizer, learning rate, schedule, AMP).
        length: the run's length (the schedule needs it).
        device: where the model trains (``--amp auto``: see ``amp_dtype``).

    Attributes:
        step: optimizer steps taken so far.
        elapsed: seconds of training before this session (earlier sessions of a resumed run).
        epoch_loss, epoch_count: sum and number of the losses of the current epoch.
        checkpoint, checkpoint_step: the last checkpoint written or loaded, and its step.
    """

    def __init__(
        self, model: nn.Module, config: TrainConfig, length: RunLength, device: torch.device
    ) -> None:
        self.model, self.config = model, config
        self.optimizer = build_optimizer(
            model, config.optimizer, config.lr, config.weight_decay, config.momentum
        )
        self.scheduler = build_scheduler(
            self.optimizer, length.total, length.warmup, config.schedule, config.min_lr_ratio
        )
        self.device = device
        self.amp_dtype = amp_dtype(config.amp, device)
        fp16 = self.amp_dtype == torch.float16  # bf16 has float32's range: no loss scaling
        self.scaler = torch.amp.GradScaler(device.type) if fp16 else None
        self.step, self.elapsed = 0, 0.0
        self.epoch_loss, self.epoch_count = 0.0, 0
        self.checkpoint: Path | None = None
        self.checkpoint_step = 0
        self._session_start = time.perf_counter()

    def autocast(self) -> contextlib.AbstractContextManager:
        """Return the context of a forward pass: autocast under AMP, else nothing."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def backward(self, loss: Tensor) -> None:
        """Backpropagate ``loss`` (scaled under fp16).

        Raises:
            TrainingDiverged: the loss is NaN or infinite (nothing is backpropagated).
        """
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(self.step + 1, value, self.checkpoint, self.checkpoint_step)
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def optimizer_step(
        self, clip: float | None, before: Callable[[int], None] | None = None
    ) -> float:
        """Update the weights from their gradients and advance the schedule; return the lr used.

        Args:
            clip: clip the global gradient norm to this (None: no clipping).
            before: called with the 0-based step once the gradients are unscaled, before the
                clipping (``Method.before_optimizer_step``).
        """
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if before is not None:
            before(self.step)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        lr = scheduled_lr(self.optimizer)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        return lr

    def start_clock(self) -> None:
        """Start timing this session (``seconds()`` counts from here)."""
        self._session_start = time.perf_counter()

    def seconds(self) -> float:
        """Return the seconds trained: earlier sessions plus this one so far."""
        return self.elapsed + time.perf_counter() - self._session_start

    def snapshot(self, config: TrainConfig) -> dict[str, Any]:
        """Return the checkpoint: weights, optimizer, scheduler, scaler, counters, RNG, config."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "step": self.step,
            "elapsed": self.seconds(),
            "epoch_loss": self.epoch_loss,
            "epoch_count": self.epoch_count,
            "rng": rng_state(),
            "config": config.to_dict(),
        }

    def save(self, path: Path, config: TrainConfig) -> None:
        """Write ``snapshot()`` to ``path`` atomically; it becomes the last good checkpoint."""
        save_checkpoint(path, self.snapshot(config))
        self.checkpoint, self.checkpoint_step = path, self.step

    def restore(self, saved: dict[str, Any], path: Path) -> None:
        """Load a ``snapshot()`` read from ``path``, RNG included.

        Raises:
            ValueError: the checkpoint does not fit this model or optimizer.
        """
        try:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.scheduler.load_state_dict(saved["scheduler"])
            if self.scaler is not None and saved.get("scaler"):
                self.scaler.load_state_dict(saved["scaler"])
        except (KeyError, RuntimeError, ValueError) as err:
            raise ValueError(
                f"not a contrastkit checkpoint: it does not match this run's config ({err})"
            ) from err
        self._apply_changes(saved.get("config", {}))
        set_rng_state(saved["rng"])
        self.step, self.elapsed = int(saved["step"]), float(saved["elapsed"])
        self.epoch_loss, self.epoch_count = float(saved["epoch_loss"]), int(saved["epoch_count"])
        self.checkpoint, self.checkpoint_step = path, self.step

    def _apply_changes(self, before: dict[str, Any]) -> None:
        """Carry a ``--resume --lr`` / ``--weight-decay`` change into the restored optimizer.

        The optimizer and scheduler come back with the checkpoint's rates; every group's rate
        (and its schedule's base) is scaled by new lr / old lr, so groups keep their ratios,
        and every decayed group's weight decay is scaled (or set, from 0) the same way.
        """
        old_lr, new_lr = before.get("lr"), self.config.lr
        if old_lr and new_lr and old_lr != new_lr:
            ratio = new_lr / old_lr
            for i, group in enumerate(self.optimizer.param_groups):
                group["lr"] *= ratio
                group["initial_lr"] *= ratio  # set by the LambdaLR schedule
                self.scheduler.base_lrs[i] *= ratio
        old_decay, new_decay = before.get("weight_decay"), self.config.weight_decay
        if old_decay is not None and new_decay is not None and old_decay != new_decay:
            for group in self.optimizer.param_groups:
                if old_decay > 0:
                    group["weight_decay"] *= new_decay / old_decay
                elif not group.get("name", "").endswith("_no_decay"):
                    group["weight_decay"] = new_decay


__all__ = [
    "RunLength",
    "TrainingDiverged",
    "TrainingState",
    "amp_dtype",
    "rng_state",
    "set_rng_state",
]

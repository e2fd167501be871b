"""DINO: self-distillation with no labels, a student matching an EMA teacher across crops.

Caron et al. 2021, https://arxiv.org/abs/2104.14294. The student (backbone + DINO head: MLP to a
256-d L2-normalised bottleneck, then a weight-normalised layer to K = 65536 prototypes) sees every
crop of the multi-crop recipe; the teacher, an EMA copy of the student (momentum 0.996 rising to 1
along a cosine), sees only the 2 global crops. The loss is the cross-entropy between the
teacher's centred, sharpened softmax (temperature 0.04 warming up linearly to 0.07) and the
student's softmax (temperature 0.1) over pairs of different crops. The center is an EMA (0.9) of
the teacher's mean output over the global batch. During the first epoch the last layer is frozen,
and the gradient norm is clipped to 3.0 (the trainer reads ``default_clip_grad``).

What prevents collapse: centering (stops one prototype from dominating) balanced by sharpening
(stops the uniform output), with a momentum teacher that is never trained by gradient.

Letters used in shapes: V views, G global views, B batch size, F feature width, K prototypes.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.losses import dino_loss
from contrastkit.methods.base import Method
from contrastkit.methods.checks import non_negative, positive, positive_ints, probability
from contrastkit.models.heads import DINOHead
from contrastkit.models.momentum import EMASchedule, frozen_copy

logger = logging.getLogger(__name__)


class DINO(Method):
    """DINO with multi-crop, centering, sharpening and an EMA teacher.

    Args:
        backbone: the encoder f, with ``.feature_dim``; it must accept every crop size.
        out_dim: K, the number of prototypes.
        hidden_dim: hidden width of the head's MLP.
        bottleneck_dim: width of the L2-normalised bottleneck.
        head_layers: linear layers of the head's MLP (before the last layer).
        norm_last_layer: fix the norm of the last layer's weights (stabilises small runs).
        use_bn_in_head: BatchNorm after the hidden layers of the head (the official code's
            option, off by default; keeps a small ViT from collapsing on `shapes`).
        momentum: the teacher's EMA momentum at step 0 (cosine-scheduled to ``final_momentum``).
        final_momentum: the momentum at the last step.
        teacher_temp: the teacher temperature after warm-up.
        warmup_teacher_temp: the teacher temperature at step 0.
        warmup_teacher_temp_epochs: epochs of linear warm-up of the teacher temperature
            (converted to steps in ``setup``).
        student_temp: the student temperature.
        center_momentum: EMA momentum of the center.
        freeze_last_layer: epochs during which the last layer gets no update.
        num_global_views: G, how many of the first views are global crops (teacher inputs).

    Raises:
        ValueError: non-positive sizes or temperatures, momenta outside [0, 1], negative epochs.
    """

    view_recipe = "multicrop"
    default_clip_grad: float | None = 3.0

    def __init__(
        self,
        backbone: nn.Module,
        *,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        head_layers: int = 3,
        norm_last_layer: bool = True,
        use_bn_in_head: bool = False,
        momentum: float = 0.996,
        final_momentum: float = 1.0,
        teacher_temp: float = 0.07,
        warmup_teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: float = 30,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        freeze_last_layer: float = 1,
        num_global_views: int = 2,
    ) -> None:
        super().__init__(backbone)
        probability(
            momentum=momentum, final_momentum=final_momentum, center_momentum=center_momentum
        )
        positive(
            teacher_temp=teacher_temp,
            warmup_teacher_temp=warmup_teacher_temp,
            student_temp=student_temp,
        )
        non_negative(  # epochs
            warmup_teacher_temp_epochs=warmup_teacher_temp_epochs,
            freeze_last_layer=freeze_last_layer,
        )
        positive_ints(num_global_views=num_global_views)
        self.base_momentum, self.final_momentum = float(momentum), float(final_momentum)
        self.ema = EMASchedule(self.base_momentum, self.final_momentum)
        self.teacher_temp = float(teacher_temp)
        self.warmup_teacher_temp = float(warmup_teacher_temp)
        self.warmup_teacher_temp_epochs = float(warmup_teacher_temp_epochs)
        self.student_temp = float(student_temp)
        self.center_momentum = float(center_momentum)
        self.freeze_last_layer = float(freeze_last_layer)
        self.num_global_views = int(num_global_views)
        self.head = DINOHead(
            backbone.feature_dim,
            hidden_dim=hidden_dim,
            bottleneck_dim=bottleneck_dim,
            out_dim=out_dim,
            num_layers=head_layers,
            norm_last_layer=norm_last_layer,
            batch_norm=use_bn_in_head,
        )
        # only the 2 global views pass through the teacher; it moves by EMA, never by gradient
        self.teacher_backbone = frozen_copy(backbone)
        self.teacher_head = frozen_copy(self.head)
        self.register_buffer("center", torch.zeros(out_dim))
        # optimizer steps taken: drives the temperature schedule, survives checkpoints
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self._warmup_steps: int | None = None  # set by setup
        self._freeze_steps = 0

    def setup(self, total_steps: int, steps_per_epoch: int) -> None:
        """Convert the epoch-based schedules (temperature warm-up, frozen last layer) to steps."""
        super().setup(total_steps, steps_per_epoch)
        self._warmup_steps = round(self.warmup_teacher_temp_epochs * steps_per_epoch)
        self._freeze_steps = round(self.freeze_last_layer * steps_per_epoch)
        warms_up = self.warmup_teacher_temp != self.teacher_temp
        if warms_up and self._warmup_steps > self.total_steps:
            logger.warning(
                "DINO: the teacher temperature warm-up (%g epochs = %d steps) is longer than "
                "training (%d steps); it ends at %.4f instead of %g. Lower "
                "warmup_teacher_temp_epochs for short runs.",
                self.warmup_teacher_temp_epochs,
                self._warmup_steps,
                self.total_steps,
                self.teacher_temperature(self.total_steps),
                self.teacher_temp,
            )

    def teacher_temperature(self, step: int) -> float:
        """Return the teacher temperature at ``step``: linear warm-up, then constant."""
        if self._warmup_steps is None:
            raise RuntimeError("call setup(total_steps, steps_per_epoch) before training DINO")
        if step >= self._warmup_steps:
            return self.teacher_temp
        fraction = step / self._warmup_steps
        return self.warmup_teacher_temp + (self.teacher_temp - self.warmup_teacher_temp) * fraction

    def _student(self, views: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Return student logits (V, B, K) and the first view's bottleneck (B, bottleneck)."""
        B = views[0].shape[0]
        # one backbone pass per crop size, as in DINO's MultiCropWrapper
        features, start = [], 0
        while start < len(views):
            end = start
            while end < len(views) and views[end].shape == views[start].shape:
                end += 1
            features.append(self.backbone(torch.cat(views[start:end])))  # ((end-start)*B, F)
            start = end
        h = torch.cat(features)  # (V*B, F)
        # DINOHead.forward, unrolled to keep the bottleneck for the collapse monitor
        bottleneck = F.normalize(self.head.mlp(h), dim=-1)  # (V*B, bottleneck), unit rows
        logits = self.head.last_layer(bottleneck)  # (V*B, K)
        return logits.view(len(views), B, -1), bottleneck[:B]

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Compute the DINO loss of all views against the teacher's view of the global ones.

        Args:
            views: G global crops (B, C, Hg, Wg) followed by any number of local crops
                (B, C, Hl, Wl).

        Returns:
            ``loss``, ``teacher_temp``, ``momentum`` (of the next teacher update),
            ``embedding`` (the student's detached bottleneck of the first view, (B, 256)) and
            ``state/center`` (K,): this process's mean teacher output, for ``after_step``.
        """
        G = self.num_global_views
        _check_views(views, G)
        student, bottleneck = self._student(views)  # (V, B, K)
        with torch.no_grad():
            teacher = self.teacher_head(self.teacher_backbone(torch.cat(views[:G])))  # (G*B, K)
            teacher = teacher.view(G, views[0].shape[0], -1)  # (G, B, K)
            batch_center = teacher.float().mean(dim=(0, 1))  # (K,)
        step = int(self.steps_done)
        temp = self.teacher_temperature(step)
        loss = dino_loss(student, teacher, self.center, temp, self.student_temp)
        return {
            "loss": loss,
            "teacher_temp": torch.tensor(temp),
            "momentum": torch.tensor(self.ema.at(step, self.total_steps)),
            "embedding": bottleneck.detach(),
            "state/center": batch_center,
        }

    def before_optimizer_step(self, step: int) -> None:
        """Drop the last layer's gradients during the first ``freeze_last_layer`` epochs."""
        if step < self._freeze_steps:
            for param in self.head.last_layer.parameters():
                param.grad = None

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int, outputs: dict[str, Tensor]) -> None:
        """Update the teacher (EMA, cosine momentum) and the center (EMA of the global mean).

        Without ``outputs["state/center"]`` (no training step was taken) the center stays.
        """
        teachers = [(self.teacher_backbone, self.backbone), (self.teacher_head, self.head)]
        self.ema.update_(teachers, step, total_steps)
        if "state/center" in outputs:
            # a copy: all_reduce_mean_ works in place and the outputs belong to the caller
            batch_center = distributed.all_reduce_mean_(outputs["state/center"].clone())
            self.center.mul_(self.center_momentum).add_(
                batch_center.to(self.center.dtype), alpha=1 - self.center_momentum
            )
        self.steps_done.fill_(step + 1)


def _check_views(views: list[Tensor], num_global: int) -> None:
    if len(views) < max(num_global, 2):
        raise ValueError(
            f"dino expects views as a list of {num_global} global crops followed by local crops "
            f"(at least 2 views in all), got {len(views)}; use the 'multicrop' view recipe"
        )
    shapes = {tuple(v.shape) for v in views[:num_global]}
    if len(shapes) != 1:
        raise ValueError(
            f"dino expects the {num_global} global crops to share one shape, got {sorted(shapes)}"
        )
    batch = views[0].shape[0]
    if any(v.shape[0] != batch for v in views):
        raise ValueError(
            "dino expects every view with the same batch size B, got "
            f"{[tuple(v.shape) for v in views]}"
        )


__all__ = ["DINO"]

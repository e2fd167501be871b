"""DINO's self-distillation loss between student and teacher views.

Letters: V student views, G teacher (global) views with G <= V, B batch, K prototypes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses.checks import check_positive, full_precision, no_autocast


def _check_dino(student: Tensor, teacher: Tensor, center: Tensor) -> None:
    if student.ndim != 3:
        raise ValueError(f"student must have shape (V, B, K), got {tuple(student.shape)}")
    if teacher.ndim != 3:
        raise ValueError(f"teacher must have shape (G, B, K), got {tuple(teacher.shape)}")
    if teacher.shape[1:] != student.shape[1:]:
        raise ValueError(
            f"teacher (G, B, K) must share B and K with student (V, B, K), "
            f"got teacher {tuple(teacher.shape)} and student {tuple(student.shape)}"
        )
    views, global_views = student.shape[0], teacher.shape[0]
    if global_views < 1 or views < global_views or views * global_views - global_views < 1:
        raise ValueError(
            f"need 1 <= G <= V teacher/student views and at least one pair of different views, "
            f"got teacher {tuple(teacher.shape)} (G={global_views}) and student "
            f"{tuple(student.shape)} (V={views})"
        )
    if center.shape != (student.shape[2],):
        raise ValueError(
            f"center must have shape (K,) = ({student.shape[2]},), got {tuple(center.shape)}"
        )


def dino_loss(
    student: Tensor,
    teacher: Tensor,
    center: Tensor,
    teacher_temp: float = 0.04,
    student_temp: float = 0.1,
) -> Tensor:
    """Compute DINO's cross-entropy between centred, sharpened teacher and student outputs.

    ``P_t = softmax((teacher - center) / teacher_temp)`` and ``log P_s = log_softmax(student /
    student_temp)``; the loss is ``-sum_k P_t[i] log P_s[j]`` averaged over the batch and over all
    (teacher view i, student view j) pairs with i != j (Caron et al. 2021,
    https://arxiv.org/abs/2104.14294). The first G student views are the same global views the
    teacher saw, so pairs i == j are skipped. The teacher is detached here, as in the paper: no
    gradient ever reaches it. Updating the center (an EMA of teacher outputs) is the caller's job.

    Args:
        student: (V, B, K) student logits for all views.
        teacher: (G, B, K) teacher logits for the G global views.
        center: (K,) running center of the teacher logits.
        teacher_temp: teacher temperature (> 0), 0.04 after warm-up in the paper.
        student_temp: student temperature (> 0), 0.1 in the paper.

    Returns:
        Scalar loss.
    """
    _check_dino(student, teacher, center)
    check_positive("teacher_temp", teacher_temp)
    check_positive("student_temp", student_temp)
    G, V = teacher.shape[0], student.shape[0]
    with no_autocast(student):
        targets = F.softmax((full_precision(teacher).detach() - center) / teacher_temp, dim=-1)
        log_probs = F.log_softmax(full_precision(student) / student_temp, dim=-1)
        # (G, V): cross-entropy of every teacher view with every student view, batch-averaged
        pair_ce = -torch.einsum("gbk,vbk->gv", targets, log_probs) / student.shape[1]
        same_view = torch.eye(G, V, dtype=torch.bool, device=student.device)
        return pair_ce.masked_fill(same_view, 0.0).sum() / (G * V - G)


class DINOLoss(nn.Module):
    """Module form of :func:`dino_loss`; ``forward(student, teacher, center, teacher_temp=None)``.

    It holds only the temperatures; the center and the teacher-temperature schedule live in the
    method that owns them (pass ``teacher_temp`` to override it per step).
    """

    def __init__(self, teacher_temp: float = 0.04, student_temp: float = 0.1) -> None:
        super().__init__()
        check_positive("teacher_temp", teacher_temp)
        check_positive("student_temp", student_temp)
        self.teacher_temp, self.student_temp = teacher_temp, student_temp

    def forward(
        self, student: Tensor, teacher: Tensor, center: Tensor, teacher_temp: float | None = None
    ) -> Tensor:
        temp = self.teacher_temp if teacher_temp is None else teacher_temp
        return dino_loss(student, teacher, center, temp, self.student_temp)

"""The list of views a method receives: checks, and the passes of two views through networks.

Letters used in shapes: B batch size, V number of views, D projection width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def unpack_pair(views: Sequence[Tensor], method: str) -> tuple[Tensor, Tensor]:
    """Return the two views of a two-view method, or raise ValueError naming the mistake.

    Args:
        views: exactly two tensors of the same shape (B, ...) with B >= 2.
        method: the method's name, for the message.
    """
    if len(views) != 2:
        raise ValueError(
            f"{method} expects views as a list of 2 tensors (B, ...), got {len(views)}; "
            "its view recipe must make 2 views of each sample (views.num_views = 2)"
        )
    x1, x2 = views
    if x1.shape != x2.shape:
        raise ValueError(
            f"{method} expects both views with the same shape, got {tuple(x1.shape)} and "
            f"{tuple(x2.shape)}"
        )
    if x1.shape[0] < 2:
        raise ValueError(
            f"{method} needs a batch of at least 2 samples per view (batch statistics), got "
            f"shape {tuple(x1.shape)}"
        )
    return x1, x2


def encode_pair(views: Sequence[Tensor], method: str, *encoder: nn.Module) -> tuple[Tensor, Tensor]:
    """Unpack two views and pass each through ``encoder`` (modules applied in order).

    The views go through separately, so each is batch-normalised with its own statistics, as
    in the papers' code. Returns z1, z2, each (B, D).
    """
    pair = []
    for z in unpack_pair(views, method):  # x1 fully, then x2: the papers' order of passes
        for module in encoder:
            z = module(z)
        pair.append(z)
    return pair[0], pair[1]


def predict_and_target(
    views: Sequence[Tensor],
    method: str,
    online: Sequence[nn.Module],
    predictor: nn.Module,
    target: Sequence[nn.Module],
) -> tuple[Tensor, tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Pass two views through an online network, its predictor and a momentum target.

    The shared forward pass of BYOL and MoCo v3: z = online(x), p = predictor(z), and t =
    target(x) computed without gradient (the target moves by EMA only).

    Args:
        views: [x1, x2], each (B, ...).
        method: the method's name, for error messages.
        online: the online modules (backbone, projector), applied in order.
        predictor: maps z (B, D) to p (B, D).
        target: the momentum copies of ``online``.

    Returns:
        ``z1`` (the online projection of x1, for the collapse monitor), ``(p1, p2)`` and
        ``(t1, t2)``, each (B, D).
    """
    pair = unpack_pair(views, method)
    z1, z2 = encode_pair(pair, method, *online)
    p1, p2 = predictor(z1), predictor(z2)
    with torch.no_grad():
        t1, t2 = encode_pair(pair, method, *target)
    return z1, (p1, p2), (t1, t2)

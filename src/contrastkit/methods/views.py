"""Checks on the list of views a method receives, shared by the methods.

Letters used in shapes: B batch size, V number of views.
"""

from __future__ import annotations

from torch import Tensor


def unpack_pair(views: list[Tensor], method: str) -> tuple[Tensor, Tensor]:
    """Return the two views of a two-view method, or raise ValueError naming the mistake.

    Args:
        views: exactly two tensors of the same shape (B, ...) with B >= 2.
        method: the method's name, for the message.
    """
    if len(views) != 2:
        raise ValueError(
            f"{method} expects views as a list of 2 tensors (B, ...), got {len(views)}; "
            "use the 'pair' or 'asymmetric_pair' view recipe"
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

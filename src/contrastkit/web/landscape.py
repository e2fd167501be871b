"""Panel 2: the InfoNCE loss of one anchor in a 2-D embedding plane, and where it pushes each point.

The loss is ``contrastkit.losses.info_nce`` itself, the one training uses; the arrows are the
negative gradients that autograd gives for the anchor, its positive and every negative. InfoNCE
compares points by cosine similarity, so only their directions matter: a point may sit anywhere
off the origin (the loss normalises it), its gradient is perpendicular to it (tangent to the
circle through it) and shrinks as 1/|p| with its distance from the origin; every gradient grows
as 1/tau, because the similarities are divided by the temperature before the softmax.

Letters used in shapes: K number of negatives.
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.losses import info_nce, info_nce_bound
from contrastkit.web.schemas import MIN_NORM


def _as_points(name: str, values: list[tuple[float, float]]) -> Tensor:
    points = torch.tensor(values, dtype=torch.float64).reshape(-1, 2)  # (n, 2)
    norms = points.norm(dim=1)
    if bool((norms < MIN_NORM).any()):
        i = int(torch.nonzero(norms < MIN_NORM)[0])
        raise ValueError(
            f"{name}[{i}] = {values[i]} is too close to the origin (norm < {MIN_NORM}); "
            "cosine similarity needs a direction"
        )
    return points.requires_grad_(True)


def landscape(
    anchor: tuple[float, float],
    positive: tuple[float, float],
    negatives: list[tuple[float, float]],
    temperature: float,
) -> dict:
    """Compute the InfoNCE loss of one anchor and the gradient on every point.

    Args:
        anchor: the query q, (2,).
        positive: its key k+, (2,).
        negatives: the other keys, (K, 2) with K >= 1.
        temperature: tau of the softmax over cosine similarities.

    Returns:
        ``{"loss", "bound", "temperature", "similarity": {"positive", "negatives": (K,)},
        "push": {"anchor": (2,), "positive": (2,), "negatives": (K, 2)}}`` where ``push`` is the
        negative gradient (the direction gradient descent moves each point, at its true size)
        and ``bound`` is log(K + 1), the loss of an anchor that cannot tell its positive from
        the negatives.

    Raises:
        ValueError: no negatives, or a point too close to the origin.
    """
    if len(negatives) < 1:
        raise ValueError("negatives must hold at least one point, got 0")
    q = _as_points("anchor", [anchor])  # (1, 2)
    k = _as_points("positive", [positive])  # (1, 2)
    n = _as_points("negatives", negatives)  # (K, 2)
    loss = info_nce(q, k, n, temperature=temperature)
    loss.backward()
    with torch.no_grad():
        sim_pos = torch.cosine_similarity(q, k, dim=1)  # (1,)
        sim_neg = torch.cosine_similarity(q, n, dim=1)  # (K,)
    return {
        "loss": float(loss.detach()),
        "bound": float(info_nce_bound(len(negatives))),
        "temperature": float(temperature),
        "similarity": {"positive": float(sim_pos[0]), "negatives": sim_neg.tolist()},
        "push": {
            "anchor": (-q.grad[0]).tolist(),
            "positive": (-k.grad[0]).tolist(),
            "negatives": (-n.grad).tolist(),
        },
    }

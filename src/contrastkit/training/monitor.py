"""Collapse monitor: is the representation still spread out, or has it collapsed?

On the L2-normalised embeddings u (B, D) of a training step it measures
- the per-dimension standard deviation over the batch, averaged over dimensions, and compared to
  1/sqrt(D), its value when the u are spread uniformly on the sphere (Chen & He 2021, SimSiam);
- the effective rank of u (exp of the entropy of its normalised singular values).

Complete collapse (every sample mapped to the same point) drives the std to 0 and the effective
rank to 1. The monitor calls the representation collapsed when the std falls below
``STD_RATIO_COLLAPSED`` = 0.1 of 1/sqrt(D), or, for D >= 2, when the effective rank falls below
``RANK_COLLAPSED`` = 1.5 (every embedding lies on one line through the origin).

It also compares with the run's own start (its first logged step): a representation whose
effective rank and whose std both fell below ``DROP_FROM_START`` = 0.25 of their starting values
is collapsing even when the absolute thresholds are not reached yet (AdamW at lr 1e3 on digits:
rank 91 -> 5, std 0.83 -> 0.12 of 1/sqrt(D), while healthy runs keep the std and at least a third
of the rank). It warns once, naming the remedy.
"""

from __future__ import annotations

import logging
import math

import torch.nn.functional as F
from torch import Tensor

from contrastkit.evaluation.metrics import effective_rank

logger = logging.getLogger(__name__)

STD_RATIO_COLLAPSED = 0.1
RANK_COLLAPSED = 1.5
DROP_FROM_START = 0.25


def collapse_stats(embedding: Tensor) -> dict[str, float]:
    """Return the monitor's numbers for one batch of embeddings: (B, D) -> dict.

    Keys: ``embedding_std`` (mean per-dimension std of the normalised rows), ``embedding_std_ref``
    (1/sqrt(D)), ``embedding_rank`` (effective rank of the normalised rows).
    """
    if embedding.ndim != 2 or embedding.shape[0] < 2:
        raise ValueError(f"embedding must be (B, D) with B >= 2, got {tuple(embedding.shape)}")
    unit = F.normalize(embedding.detach().float().cpu(), dim=1)
    return {
        "embedding_std": float(unit.std(dim=0).mean()),
        "embedding_std_ref": 1 / math.sqrt(unit.shape[1]),
        "embedding_rank": effective_rank(unit),
    }


def is_collapsed(stats: dict[str, float]) -> bool:
    """Return True when ``collapse_stats`` output shows a collapsed representation."""
    low_std = stats["embedding_std"] < STD_RATIO_COLLAPSED * stats["embedding_std_ref"]
    wide = stats["embedding_std_ref"] <= 1 / math.sqrt(2)  # D >= 2
    return low_std or (wide and stats["embedding_rank"] < RANK_COLLAPSED)


class CollapseMonitor:
    """Measures each logged step's embeddings and warns once when they collapse.

    Args:
        start: the ``collapse_stats`` of the run's first logged step (a resumed run passes its
            own); None: the first call's.
    """

    def __init__(self, start: dict[str, float] | None = None) -> None:
        self.warned = False
        self.start = start

    def __call__(self, embedding: Tensor, step: int) -> dict[str, float]:
        """Return ``collapse_stats(embedding)``; log a warning the first time it shows collapse."""
        stats = collapse_stats(embedding)
        if self.start is None:
            self.start = {**stats, "step": step}
        if self.warned:
            return stats
        if is_collapsed(stats):
            self.warned = True
            logger.warning(
                "representation collapsed at step %d: per-dimension std %.4f (healthy about "
                "1/sqrt(%d) = %.4f), effective rank %.2f of %d",
                step,
                stats["embedding_std"],
                embedding.shape[1],
                stats["embedding_std_ref"],
                stats["embedding_rank"],
                embedding.shape[1],
            )
        elif dropped_from_start(stats, self.start):
            self.warned = True
            logger.warning(
                "representation collapsing at step %d: effective rank %.2f and per-dimension "
                "std %.4f, down from %.2f and %.4f at step %s; a learning rate this high "
                "destroys it: continue from the last checkpoint with --resume RUN_DIR --lr LOWER",
                step,
                stats["embedding_rank"],
                stats["embedding_std"],
                self.start["embedding_rank"],
                self.start["embedding_std"],
                self.start.get("step", "1"),
            )
        return stats


def dropped_from_start(stats: dict[str, float], start: dict[str, float]) -> bool:
    """Return True when both the effective rank and the std fell below ``DROP_FROM_START`` of
    their values at ``start`` (two ``collapse_stats`` outputs)."""
    return (
        stats["embedding_rank"] < DROP_FROM_START * start["embedding_rank"]
        and stats["embedding_std"] < DROP_FROM_START * start["embedding_std"]
    )


def start_of_run(records: list[dict]) -> dict[str, float] | None:
    """Return the collapse statistics of the first step line of ``metrics.jsonl`` records."""
    keys = ("embedding_std", "embedding_std_ref", "embedding_rank")
    for record in records:
        if record.get("event") == "step" and all(k in record for k in keys):
            return {**{k: float(record[k]) for k in keys}, "step": record["step"]}
    return None


__all__ = [
    "CollapseMonitor",
    "collapse_stats",
    "dropped_from_start",
    "is_collapsed",
    "start_of_run",
]

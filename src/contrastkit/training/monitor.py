"""Collapse monitor: is the representation still spread out, or has it collapsed?

On the L2-normalised embeddings u (B, D) of a training step it measures
- the per-dimension standard deviation over the batch, averaged over dimensions, and compared to
  1/sqrt(D), its value when the u are spread uniformly on the sphere (Chen & He 2021, SimSiam);
- the effective rank of u (exp of the entropy of its normalised singular values).

Complete collapse (every sample mapped to the same point) drives the std to 0 and the effective
rank to 1. The monitor calls the representation collapsed when the std falls below
``STD_RATIO_COLLAPSED`` = 0.1 of 1/sqrt(D), or, for D >= 2, when the effective rank falls below
``RANK_COLLAPSED`` = 1.5 (every embedding lies on one line through the origin). It warns once.
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
    """Measures each logged step's embeddings and warns once when they have collapsed."""

    def __init__(self) -> None:
        self.warned = False

    def __call__(self, embedding: Tensor, step: int) -> dict[str, float]:
        """Return ``collapse_stats(embedding)``; log a warning the first time it shows collapse."""
        stats = collapse_stats(embedding)
        if not self.warned and is_collapsed(stats):
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
        return stats


__all__ = ["CollapseMonitor", "collapse_stats", "is_collapsed"]

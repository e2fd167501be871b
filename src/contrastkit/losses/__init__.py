"""Loss functions: pure functions of tensors, each with a thin ``nn.Module`` wrapper.

A loss holds no state: queues, centers and temperature schedules belong to the method.
"""

from contrastkit.losses.barlow_twins import BarlowTwinsLoss, barlow_twins_loss
from contrastkit.losses.dino import DINOLoss, dino_loss
from contrastkit.losses.info_nce import (
    CLIPLoss,
    InfoNCELoss,
    NTXentLoss,
    clip_loss,
    info_nce,
    info_nce_bound,
    nt_xent,
)
from contrastkit.losses.negative_cosine import NegativeCosineLoss, negative_cosine
from contrastkit.losses.vicreg import (
    VICRegLoss,
    vicreg_covariance,
    vicreg_invariance,
    vicreg_loss,
    vicreg_terms,
    vicreg_variance,
)

__all__ = [
    "BarlowTwinsLoss",
    "CLIPLoss",
    "DINOLoss",
    "InfoNCELoss",
    "NTXentLoss",
    "NegativeCosineLoss",
    "VICRegLoss",
    "barlow_twins_loss",
    "clip_loss",
    "dino_loss",
    "info_nce",
    "info_nce_bound",
    "negative_cosine",
    "nt_xent",
    "vicreg_covariance",
    "vicreg_invariance",
    "vicreg_loss",
    "vicreg_terms",
    "vicreg_variance",
]

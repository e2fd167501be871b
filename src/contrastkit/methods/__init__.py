"""Self-supervised methods, and the supervised yardstick, listed explicitly in ``METHODS``.

Each value is a ``Method`` subclass whose constructor takes ``(backbone, **options)`` with the
paper's defaults as keyword arguments.
"""

from contrastkit.methods.barlow_twins import BarlowTwins
from contrastkit.methods.base import Method
from contrastkit.methods.byol import BYOL
from contrastkit.methods.clip import CLIP
from contrastkit.methods.dino import DINO
from contrastkit.methods.moco import MoCo, MoCoV3
from contrastkit.methods.simclr import SimCLR
from contrastkit.methods.simsiam import SimSiam
from contrastkit.methods.supervised import Supervised
from contrastkit.methods.vicreg import VICReg

METHODS: dict[str, type[Method]] = {
    "simclr": SimCLR,
    "clip": CLIP,
    "moco": MoCo,
    "mocov3": MoCoV3,
    "byol": BYOL,
    "simsiam": SimSiam,
    "dino": DINO,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
    "supervised": Supervised,
}

__all__ = [
    "BYOL",
    "CLIP",
    "DINO",
    "METHODS",
    "BarlowTwins",
    "Method",
    "MoCo",
    "MoCoV3",
    "SimCLR",
    "SimSiam",
    "Supervised",
    "VICReg",
]

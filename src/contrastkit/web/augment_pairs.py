"""Panel 1: two augmented views of the demo pictures and the cosine similarity of h and of z.

Both are reported because they differ in the way the SimCLR paper describes: the loss acts on
the projection z = g(h), which learns to throw away what the augmentations change, so two views
of different pictures look far apart on z (low cosine), while h keeps more of the picture and
stays more similar; h is what is kept after training.

Views are made by the SimCLR recipe of ``contrastkit.transforms`` (the one training uses) at
``VIEW_SIZE`` pixels so that people can see them, then shrunk to the encoder's input size, the
size its training views had. A pair is a pure function of its seed: views come from
``contrastkit.training.batches.ViewDataset``, which seeds torch's RNG per (seed, picture), so
switching
encoders compares the very same two views.

Letters used in shapes: B pairs, F feature width of h, D width of z.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.training.batches import ViewDataset
from contrastkit.transforms import build_view_fn
from contrastkit.web.demo_images import DemoImages
from contrastkit.web.encoder_cache import DemoEncoders
from contrastkit.web.png import png_data_url

VIEW_SIZE = 96  # pixels of a view on the page
PICTURE_SIDE = 128  # pictures are stored at this side before cropping
NUM_SHAPES = 8  # shapes scenes next to the photographs
AVERAGE_PAIRS = 32  # pairs of each kind behind the averages
AVERAGE_SEED = 20240601

# ViewDataset reseeds torch's global RNG around each picture; one thread at a time keeps the
# views of concurrent requests reproducible.
_VIEW_LOCK = threading.Lock()


class PairSampler:
    """Sample positive and negative pairs of views and measure them with both encoders.

    Args:
        encoders: the untrained and (once ready) trained encoders.
    """

    def __init__(self, encoders: DemoEncoders) -> None:
        self.encoders = encoders
        self._pictures: DemoImages | None = None
        self._view_fn = None
        self._load_lock = threading.Lock()
        self._averages: dict[str, dict] = {}

    @property
    def pictures(self) -> DemoImages:
        """The demo pictures, loaded on first use (the server starts without waiting for them)."""
        with self._load_lock:
            if self._pictures is None:
                pictures = DemoImages(PICTURE_SIDE, num_shapes=NUM_SHAPES)
                self._view_fn = build_view_fn("pair", pictures, size=VIEW_SIZE)
                self._pictures = pictures
            return self._pictures

    @property
    def image_names(self) -> list[str]:
        """Names of the pictures, in dataset order."""
        return list(self.pictures.class_names)

    def _views(self, seed: int, kind: str) -> tuple[tuple[int, int], Tensor, Tensor]:
        """Return the picture indices and the two views (3, S, S) of the pair drawn by seed."""
        pictures = self.pictures
        n = len(pictures)
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=generator).tolist()
        first, second = (order[0], order[0]) if kind == "positive" else (order[0], order[1])
        views = ViewDataset(pictures, self._view_fn, seed, epoch=0)
        with _VIEW_LOCK:
            if kind == "positive":
                a, b = views[first]
            else:
                a, b = views[first][0], views[second][1]
        return (first, second), a, b

    def _similarity(self, method, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Cosine similarity of h and of z for batches of views a, b: (B, 3, S, S) -> (B,), (B,)."""
        size = self.encoders.input_size
        x = torch.cat([a, b])
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        with torch.no_grad():
            h = method.embed(x)  # (2B, F)
            z = method.projector(h)  # (2B, D)
        ha, hb = h.chunk(2)
        za, zb = z.chunk(2)
        return F.cosine_similarity(ha, hb, dim=1), F.cosine_similarity(za, zb, dim=1)

    def sample(self, kind: str, seed: int) -> dict:
        """Draw a pair of views and measure it.

        Args:
            kind: "positive" (two views of one picture) or "negative" (two pictures).
            seed: decides the pictures and the augmentations.

        Returns:
            ``{"kind", "seed", "images": [name, name], "views": [png url, png url],
            "similarity": {"untrained": float, "trained": float or None},
            "similarity_z": {"untrained": float, "trained": float or None}}``: the cosine of h
            and of z; ``trained`` is None until that encoder is ready.
        """
        if kind not in ("positive", "negative"):
            raise ValueError(f"kind must be 'positive' or 'negative', got {kind!r}")
        (i, j), a, b = self._views(seed, kind)
        on_h: dict = {"untrained": None, "trained": None}
        on_z: dict = {"untrained": None, "trained": None}
        for name, method in self.encoders.methods().items():
            sim_h, sim_z = self._similarity(method, a[None], b[None])
            on_h[name], on_z[name] = float(sim_h[0]), float(sim_z[0])
        names = self.pictures.class_names
        return {
            "kind": kind,
            "seed": seed,
            "images": [names[i], names[j]],
            "views": [png_data_url(a), png_data_url(b)],
            "similarity": on_h,
            "similarity_z": on_z,
        }

    def averages(self) -> dict:
        """Return the mean similarity over ``AVERAGE_PAIRS`` fixed positive and negative pairs.

        Returns:
            ``{"pairs": B, "untrained": stats, "trained": stats or None}`` where stats is
            ``{"positive", "negative", "positive_std", "negative_std"}`` on h and the same
            keys ending in ``_z`` (``positive_z``...) on z.
        """
        out: dict = {"pairs": AVERAGE_PAIRS, "untrained": None, "trained": None}
        for name, method in self.encoders.methods().items():
            key = f"{name}:{id(method)}"
            if key not in self._averages:
                self._averages[key] = self._measure(method)
            out[name] = self._averages[key]
        return out

    def _measure(self, method) -> dict:
        stats = {}
        for offset, kind in enumerate(("positive", "negative")):
            firsts, seconds = [], []
            for k in range(AVERAGE_PAIRS):
                _, a, b = self._views(AVERAGE_SEED + 1000 * offset + k, kind)
                firsts.append(a)
                seconds.append(b)
            sims_h, sims_z = self._similarity(method, torch.stack(firsts), torch.stack(seconds))
            for suffix, sims in (("", sims_h), ("_z", sims_z)):  # (B,) each
                stats[f"{kind}{suffix}"] = float(sims.mean())
                stats[f"{kind}_std{suffix}"] = float(sims.std())
        return stats

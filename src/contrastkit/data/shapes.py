"""``shapes``: procedurally generated RGB scenes of one coloured shape on a cluttered background.

Each scene holds one object — a circle, square, triangle, star or cross — in one of six named
colours, with random size (radius 22-38% of the side), position and rotation, drawn over a
cluttered "confetti" background: random colours at 1 and 2 px scale. Every sample carries its
shape class (the label), its colour, a pixel mask of the object and a caption ("a red star").
Because the class decides only the outline, raw-pixel nearest neighbours are poor at it (about
0.3 accuracy against 0.2 chance, see tests/data/test_shapes.py), while a learned representation
can do better.

Why confetti: every background is drawn from the same distribution (grey on average), so it is
clutter, never a cue. An earlier version drew smooth noise, gradients and stripes between two
muted colours per scene; self-supervised methods then told scenes apart by their background
colours and patterns and learned nothing about the shape in 600 steps (kNN on the shape class
0.25-0.26 against 0.26 at random initialisation), which is the "feature suppression" of Chen et
al. 2021 (https://arxiv.org/abs/2008.05659): an easy feature that separates instances keeps
the network from learning a harder one.

Generation is deterministic: sample i of a split is drawn from
``numpy.random.default_rng((seed, split, i))`` (split 0 = train, 1 = test), so the train and
test splits never share a scene. Both are generated on first use and cached in memory.

Compositional split (for CLIP zero-shot): the (colour, shape) pairs in ``holdout`` never occur in
the train split; the test split draws from all 30 pairs and marks the held-out ones in
``ds.unseen``. ``build_shapes`` holds out ``DEFAULT_HOLDOUT`` unless told otherwise.

Letters used in shapes: N scenes, S image side.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torch.utils.data import Dataset

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.12, 0.12),
    "green": (0.15, 0.75, 0.20),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "purple": (0.60, 0.20, 0.80),
    "orange": (1.00, 0.55, 0.05),
}
# every colour once, every shape at least once; 6 of the 30 pairs
DEFAULT_HOLDOUT: tuple[tuple[str, str], ...] = (
    ("red", "star"),
    ("green", "circle"),
    ("blue", "triangle"),
    ("yellow", "square"),
    ("purple", "cross"),
    ("orange", "circle"),
)
TRAIN_SIZE = 4000
TEST_SIZE = 1000
MIN_SIZE = 16  # below this the outlines are no longer recognisable
RADIUS = (0.22, 0.38)  # object circumradius as a fraction of the side
# radius multipliers that roughly equalise the area of the outlines
_AREA_SCALE = {"circle": 0.85, "square": 0.95, "triangle": 1.1, "star": 1.15, "cross": 1.0}


def _outline(shape: str) -> np.ndarray:
    """Return the unit-circumradius polygon of ``shape``: (V, 2) vertices around (0, 0)."""
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    elif shape == "square":
        t = np.arange(4) * np.pi / 2 + np.pi / 4
    elif shape == "triangle":
        t = np.arange(3) * 2 * np.pi / 3 - np.pi / 2
    elif shape == "star":
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    else:  # cross: a plus sign with arms of half-width w
        w = 0.32
        return np.array(
            [(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1)]
            + [(-w, -1), (-w, -w), (-1, -w), (-1, w), (-w, w), (-w, 1)],
            dtype=float,
        )
    return np.stack([np.cos(t), np.sin(t)], axis=1)


_OUTLINES = {name: _outline(name) for name in SHAPES}


# Every scene is drawn from ONE vector of uniforms u = default_rng((seed, split, i)).random(_K)
# (slices below) and its background from default_rng((seed, split, i, 1)).
_PAIR, _RADIUS, _CENTER, _ANGLE, _JITTER = 0, 1, slice(2, 4), 4, slice(5, 8)
_K = 8
BACKGROUND_RANGE = (0.2, 0.8)  # every channel of every background pixel is uniform in it
_CHUNK = 1024  # scenes rendered together


def _background(seed: int, split: int, index: int, size: int) -> np.ndarray:
    """Render one confetti background: (3, S, S) float32, colour noise at 1 and 2 px.

    Half of each pixel is its own random colour, half the colour of its 2x2 cell, so the
    texture has fine grain and small patches. Every scene draws from the same distribution
    (mean grey): a background is clutter that no two views of a scene share beyond its pixels,
    never a colour or pattern that identifies the scene.
    """
    rng = np.random.default_rng((seed, split, index, 1))
    lo, hi = BACKGROUND_RANGE
    fine = rng.random((3, size, size), dtype=np.float32)
    cells = rng.random((3, (size + 1) // 2, (size + 1) // 2), dtype=np.float32)
    coarse = cells.repeat(2, axis=1).repeat(2, axis=2)[:, :size, :size]
    return lo + (hi - lo) * (fine + coarse) / 2


def _object_mask(u: np.ndarray, size: int, shape: int) -> tuple[np.ndarray, float]:
    """Rasterise one object from its uniforms u (K,): mask (S, S) bool, radius fraction."""
    radius = RADIUS[0] + (RADIUS[1] - RADIUS[0]) * u[_RADIUS]
    r_px = radius * size * _AREA_SCALE[SHAPES[shape]]
    center = 0.8 * r_px + u[_CENTER] * (size - 1.6 * r_px)
    angle = 2 * np.pi * u[_ANGLE]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = _OUTLINES[SHAPES[shape]] @ rot.T * r_px + center  # (V, 2) as (x, y)
    canvas = Image.new("1", (size, size), 0)
    ImageDraw.Draw(canvas).polygon(points.ravel().tolist(), fill=1)
    return np.asarray(canvas, dtype=bool), radius


def _render(seed: int, split: int, start: int, stop: int, size: int, pairs: list) -> tuple:
    """Render scenes start..stop-1: images (n, 3, S, S) uint8, masks, labels, colours, radii."""
    u = np.stack([np.random.default_rng((seed, split, i)).random(_K) for i in range(start, stop)])
    colors, labels = np.array([pairs[int(v * len(pairs))] for v in u[:, _PAIR]]).T
    images = np.stack([_background(seed, split, i, size) for i in range(start, stop)])
    pixels = np.rint(images * 255).astype(np.uint8)
    masks, radii = zip(
        *(_object_mask(v, size, s) for v, s in zip(u, labels, strict=True)), strict=True
    )
    masks = np.stack(masks)
    palette = np.array(list(COLORS.values()))[colors]  # (n, 3)
    rgb = np.clip(palette + (-0.06 + 0.12 * u[:, _JITTER]), 0.0, 1.0)
    paint = np.rint(rgb * 255).astype(np.uint8)[:, :, None, None]  # (n, 3, 1, 1)
    pixels = np.where(masks[:, None], paint, pixels)  # the flat-coloured object on top
    return pixels, masks, labels, colors, np.array(radii)


@functools.lru_cache(maxsize=8)
def _generate(seed: int, split: int, n: int, size: int, holdout: frozenset) -> tuple:
    """Generate (or fetch from the cache) n scenes: images (N, 3, S, S) uint8, masks, ..."""
    names = list(COLORS)
    pairs = [(c, s) for c in range(len(names)) for s in range(len(SHAPES))]
    if split == 0:  # the train split never shows a held-out pair
        pairs = [(c, s) for c, s in pairs if (names[c], SHAPES[s]) not in holdout]
    chunks = [
        _render(seed, split, start, min(start + _CHUNK, n), size, pairs)
        for start in range(0, n, _CHUNK)
    ]
    pixels, masks, labels, colors, radii = (
        np.concatenate(parts) for parts in zip(*chunks, strict=True)
    )
    return pixels, masks, labels, colors, radii


def caption(color: str, shape: str) -> str:
    """Return the caption of a scene: ``caption("orange", "star") == "an orange star"``."""
    return f"{'an' if color[0] in 'aeiou' else 'a'} {color} {shape}"


class Shapes(Dataset):
    """Coloured shapes on clutter; ``ds[i] -> (x: (3, S, S) in [0, 1], y: shape class)``.

    Attributes:
        images: (N, 3, S, S) uint8.
        labels: (N,) shape class, an index into ``class_names``.
        colors: (N,) colour, an index into ``color_names``.
        scales: (N,) object circumradius as a fraction of S (0.22 to 0.38).
        masks: (N, S, S) bool, the object's pixels.
        captions: N strings such as "a red star".
        unseen: (N,) bool, True where the (colour, shape) pair is held out of training.
        holdout: the held-out (colour, shape) pairs.
    """

    kind = "images"
    name = "shapes"
    class_names = list(SHAPES)
    color_names = list(COLORS)

    def __init__(self, *, train: bool, seed: int, size: int, n: int, holdout: frozenset) -> None:
        images, masks, labels, colors, radii = _generate(seed, 0 if train else 1, n, size, holdout)
        self.images = torch.from_numpy(images)
        self.masks = torch.from_numpy(masks)
        self.labels = torch.from_numpy(labels)
        self.colors = torch.from_numpy(colors)
        self.scales = torch.from_numpy(radii).float()
        self.captions = [
            caption(self.color_names[c], self.class_names[s])
            for c, s in zip(colors.tolist(), labels.tolist(), strict=True)
        ]
        self.holdout = tuple(sorted(holdout))
        self.unseen = torch.tensor(
            [
                (self.color_names[c], self.class_names[s]) in holdout
                for c, s in zip(colors, labels, strict=True)
            ],
            dtype=torch.bool,
        )
        self.input_shape = (3, size, size)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index].float().div_(255.0), int(self.labels[index])


def _check_holdout(holdout: Iterable) -> frozenset:
    pairs = set()
    for pair in holdout:
        if len(pair) != 2 or pair[0] not in COLORS or pair[1] not in SHAPES:
            raise ValueError(
                f"holdout must hold (colour, shape) pairs with colour in {list(COLORS)} and "
                f"shape in {list(SHAPES)}, got {pair!r}"
            )
        pairs.add((str(pair[0]), str(pair[1])))
    for shape in SHAPES:
        if all((color, shape) in pairs for color in COLORS):
            raise ValueError(f"holdout removes every colour of {shape!r}; keep at least one")
    return frozenset(pairs)


def build_shapes(
    path: str | None = None,
    *,
    train: bool = True,
    seed: int = 0,
    download: bool = False,
    size: int = 32,
    n: int | None = None,
    holdout: Iterable[tuple[str, str]] | None = DEFAULT_HOLDOUT,
) -> Shapes:
    """Generate the train (4,000 scenes) or test (1,000 scenes) split of ``shapes``.

    Args:
        path: unused (the data is generated); must be None.
        train: which split; the two never share a scene.
        seed: seeds the scenes; the same seed gives the same images, masks and captions.
        download: unused; nothing is downloaded.
        size: image side S (default 32; 64 for ``shapes64``; at least 16).
        n: number of scenes; default 4,000 (train) or 1,000 (test).
        holdout: (colour, shape) pairs kept out of the train split; None or () keeps none.

    Raises:
        ValueError: a path, an unsupported size, n < 1, or an unknown or total holdout.
    """
    if path is not None:
        raise ValueError(f"the shapes dataset is generated and takes no path, got {path!r}")
    if size < MIN_SIZE:
        raise ValueError(f"size must be >= {MIN_SIZE} pixels, got {size}")
    n = (TRAIN_SIZE if train else TEST_SIZE) if n is None else int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return Shapes(
        train=train, seed=int(seed), size=size, n=n, holdout=_check_holdout(holdout or ())
    )


def build_shapes64(
    path: str | None = None, *, train: bool = True, seed: int = 0, download: bool = False
) -> Shapes:
    """Generate ``shapes`` at 64x64 (``--data shapes64``); see ``build_shapes``."""
    return build_shapes(path, train=train, seed=seed, download=download, size=64)


__all__ = [
    "COLORS",
    "DEFAULT_HOLDOUT",
    "SHAPES",
    "Shapes",
    "build_shapes",
    "build_shapes64",
    "caption",
]

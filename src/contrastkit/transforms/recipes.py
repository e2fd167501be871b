"""The view recipes as plain data: frozen dataclasses with the papers' defaults.

Every recipe is written here once; the backends only execute it: ``transforms/images.py`` turns
a ``ViewRecipe`` into per-sample torchvision v2 transforms, ``transforms/batched.py`` into
batched ones on the training device, ``transforms/small.py`` and ``transforms/image_text.py``
run the other recipes. Each dataclass checks its values when it is made, naming the field, its
value and what is accepted; ``transforms/options.py`` (``view_recipe``) turns the user's
options into these, refusing unknown names.

SimCLR (Chen et al. 2020, https://arxiv.org/abs/2002.05709, appendix A): random resized crop
(scale 0.08-1, aspect 3/4-4/3) back to the image size, horizontal flip, colour jitter
(brightness, contrast, saturation 0.4, hue 0.1) with p = 0.8, grayscale with p = 0.2, Gaussian
blur (kernel ~10% of the side, sigma 0.1-2) with p = 0.5. BYOL (Grill et al. 2020,
https://arxiv.org/abs/2006.07733, table 6) uses blur p = 1.0 for view 1 and p = 0.1 plus
solarisation p = 0.2 for view 2. DINO (Caron et al. 2021, https://arxiv.org/abs/2104.14294, and
its official code): 2 global crops at 40-100% of the area, blurred and solarised as BYOL's two
views, then N local crops at 5-40% blurred with p = 0.5; jitter saturation 0.2. Only the global
crops go through the teacher, so they come first.

Sizes for small images: crops keep the image side by default; DINO's local crop is 3/7 of it
(as 96/224), rounded to a multiple of the default ViT patch size ``max(2, side // 8)`` so that
a local crop is a whole patch grid (12 px for 32 px images, 24 px for 64 px, 4 px for 8 px).
Images at most ``SMALL_IMAGE_SIDE`` px on a side (digits) get the small-image pairs instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

VIEW_RECIPES: tuple[str, ...] = ("pair", "asymmetric_pair", "multicrop", "image_text")
IMAGE_RECIPES: tuple[str, ...] = ("pair", "asymmetric_pair", "multicrop")
PAIRS: tuple[str, ...] = ("pair", "asymmetric_pair")
# images at most this many pixels on a side get the small-image (digits) recipe for pairs
SMALL_IMAGE_SIDE = 16
BLUR_SIGMA: tuple[float, float] = (0.1, 2.0)  # SimCLR's blur sigma range
SOLARIZE_THRESHOLD = 0.5  # pixels >= this are inverted
# (blur_p, solarize_p) of BYOL's view 1 and view 2, which are also DINO's two global crops
BYOL_VIEWS: tuple[tuple[float, float], ...] = ((1.0, 0.0), (0.1, 0.2))
NUM_GLOBAL = len(BYOL_VIEWS)
DINO_LOCAL_BLUR_P = 0.5


def check_probability(name: str, p: float) -> float:
    """Return p as a float; raise ValueError naming ``name`` unless 0 <= p <= 1."""
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    return float(p)


def check_range(name: str, value: Sequence[float], upper: float | None = 1.0) -> tuple:
    """Return ``value`` as a (min, max) float pair with 0 < min <= max (<= ``upper``)."""
    pair = tuple(float(v) for v in value)
    if len(pair) != 2 or not 0 < pair[0] <= pair[1] <= (upper or float("inf")):
        bound = f" <= {upper:g}" if upper else ""
        raise ValueError(f"{name} must be (min, max) with 0 < min <= max{bound}, got {value}")
    return pair


def check_non_negative(**values: float) -> None:
    """Raise ValueError naming the values unless each is a finite number >= 0 (NaN is not)."""
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in values.values()
    ):
        *others, last = values
        names = f"{', '.join(others)} and {last}" if others else last
        given = ", ".join(f"{name}={value!r}" for name, value in values.items())
        raise ValueError(f"{names} must be >= 0 and finite, got {given}")


def _check_flag(name: str, value: bool) -> None:
    if value not in (True, False):  # 0 and 1 pass, as they did when flags scaled probabilities
        raise ValueError(f"{name} must be true or false, got {value!r}")


@dataclass(frozen=True)
class CropSpec:
    """One view of an image recipe: a random resized crop of side ``size``, then its augmentations.

    The defaults are SimCLR's. Lists (as TOML gives them) become tuples; bad values raise
    ``ValueError`` naming the field, its value and what is accepted.

    Attributes:
        size: side S of the output crop.
        channels: C of the images, 1 (brightness and contrast jitter only) or 3.
        scale: (min, max) fraction of the image area kept by the random resized crop.
        ratio: (min, max) aspect ratio of the crop.
        flip_p: probability of a horizontal flip.
        jitter: (brightness, contrast, saturation, hue) strengths of the colour jitter.
        jitter_p: probability of applying the colour jitter.
        gray_p: probability of converting to grayscale (3 channels kept).
        blur_p: probability of a Gaussian blur (sigma uniform in ``BLUR_SIGMA``).
        solarize_p: probability of solarising (x -> 1 - x where x >= 0.5).
        rotate_p: probability of rotating the crop by an angle uniform in [-degrees, degrees]
            (not in the papers; for data whose objects lie at any angle, as ``shapes``).
        degrees: the largest rotation angle.
        mean, std: per-channel normalisation applied last; both None keeps [0, 1].
    """

    size: int
    channels: int = 3
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur_p: float = 0.5
    solarize_p: float = 0.0
    rotate_p: float = 0.0
    degrees: float = 180.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if int(self.size) <= 0:
            raise ValueError(f"size must be a positive crop side, got {self.size}")
        jitter = tuple(float(v) for v in self.jitter)
        if len(jitter) != 4 or min(jitter) < 0:
            raise ValueError(
                "jitter must be 4 strengths >= 0 (brightness, contrast, saturation, hue), "
                f"got {self.jitter}"
            )
        if (self.mean is None) != (self.std is None):
            raise ValueError(
                f"pass both mean and std or neither, got mean={self.mean}, std={self.std}"
            )
        if self.mean is not None:
            mean, std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
            if len(mean) != self.channels or len(std) != self.channels or min(std) <= 0:
                raise ValueError(
                    f"mean and std must hold {self.channels} values with std > 0, got "
                    f"{self.mean} and {self.std}"
                )
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)
        normalised = {
            "size": int(self.size),
            "scale": check_range("scale", self.scale),
            "ratio": check_range("ratio", self.ratio, upper=None),
            "jitter": jitter,
            "degrees": float(self.degrees),
        }
        for name in ("flip_p", "jitter_p", "gray_p", "blur_p", "solarize_p", "rotate_p"):
            normalised[name] = check_probability(name, getattr(self, name))
        for name, value in normalised.items():  # frozen: set once, here
            object.__setattr__(self, name, value)

    @property
    def blur_kernel(self) -> int:
        """SimCLR's blur kernel: an odd size of about 10% of the crop side, at least 3."""
        k = max(3, int(round(0.1 * self.size)))
        return k if k % 2 else k + 1


@dataclass(frozen=True)
class ViewRecipe:
    """The views of an image recipe, in order: one ``CropSpec`` per view.

    Attributes:
        name: "pair", "asymmetric_pair" or "multicrop".
        views: the V views; for multi-crop the ``NUM_GLOBAL`` global crops come first.
    """

    name: str
    views: tuple[CropSpec, ...]

    @property
    def min_side(self) -> int:
        """The largest crop side: smaller images cannot be cropped."""
        return max(view.size for view in self.views)


def default_local_size(side: int) -> int:
    """Return the default local-crop side for images of side ``side`` (3/7, patch-aligned)."""
    patch = max(2, side // 8)
    return max(patch, round(side * 3 / 7 / patch) * patch)


@dataclass(frozen=True)
class MultiCrop:
    """DINO's multi-crop options (the defaults are DINO's; sizes default from the images).

    Attributes:
        n_local: number N of local crops (DINO's code defaults to 8); 0 gives 2 global crops.
        global_size: side G of the global crops; None: the image side.
        local_size: side L of the local crops; None: ``default_local_size(side)``.
        global_scale, local_scale: (min, max) fraction of the image area each crop covers.
        jitter: colour-jitter strengths (brightness, contrast, saturation, hue).
        rotate_p: probability of a rotation of each crop (not in DINO).
        blur: False turns every crop's blur off (at 32 px blur erases the outlines).
        solarize: False turns global crop 2's solarisation off.
        mean, std: per-channel normalisation applied last; both None keeps [0, 1].
    """

    n_local: int = 8
    global_size: int | None = None
    local_size: int | None = None
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    rotate_p: float = 0.0
    blur: bool = True
    solarize: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def recipe(self, side: int, channels: int) -> ViewRecipe:
        """Return [global 1, global 2, local 1..N] for images of side ``side`` and C channels."""
        g = int(self.global_size) if self.global_size is not None else int(side)
        loc = int(self.local_size) if self.local_size is not None else default_local_size(side)
        if g <= 0 or loc <= 0 or self.n_local < 0:
            raise ValueError(
                f"global_size and local_size must be > 0 and n_local >= 0, got global_size={g}, "
                f"local_size={loc}, n_local={self.n_local}"
            )
        _check_flag("blur", self.blur)
        _check_flag("solarize", self.solarize)
        global_scale = check_range("global_scale", self.global_scale)
        local_scale = check_range("local_scale", self.local_scale)
        common = {"channels": channels, "jitter": self.jitter, "rotate_p": self.rotate_p}
        common |= {"mean": self.mean, "std": self.std}
        blur, solarize = float(self.blur), float(self.solarize)
        globals_ = tuple(
            CropSpec(g, scale=global_scale, blur_p=b * blur, solarize_p=s * solarize, **common)
            for b, s in BYOL_VIEWS
        )
        local = CropSpec(loc, scale=local_scale, blur_p=DINO_LOCAL_BLUR_P * blur, **common)
        return ViewRecipe("multicrop", globals_ + (local,) * int(self.n_local))


# the options of the pairs: ``size`` (default: the image side), the two switches of BYOL's
# fixed per-view recipe, and every field of one view
PAIR_OPTIONS: tuple[str, ...] = ("size", "blur", "solarize") + tuple(
    f.name for f in fields(CropSpec) if f.name not in ("size", "channels")
)


def pair_recipe(
    recipe: str, size: int, channels: int, blur: bool = True, solarize: bool = True, **view
) -> ViewRecipe:
    """Return SimCLR's two same-recipe views ("pair") or BYOL's asymmetric pair.

    Args:
        recipe: "pair" or "asymmetric_pair".
        size: side of both views.
        channels: C of the images.
        blur: False turns the asymmetric pair's blur off (SimCLR left blur out on CIFAR: at
            32 px it erases the outlines; for the symmetric pair pass ``blur_p=0``).
        solarize: False turns the asymmetric pair's solarisation off (not in the paper: on
            ``shapes`` it kept BYOL from learning the shape, README).
        **view: ``CropSpec`` fields shared by both views.
    """
    _check_flag("blur", blur)
    _check_flag("solarize", solarize)
    if recipe == "pair":
        if not blur:
            raise ValueError(
                "blur=False is for the asymmetric and multi-crop recipes; pass blur_p=0"
            )
        if not solarize:
            raise ValueError("solarize=False is for the asymmetric and multi-crop recipes")
        spec = CropSpec(size, channels=channels, **view)
        return ViewRecipe(recipe, (spec, spec))
    if {"blur_p", "solarize_p"} & set(view):
        raise ValueError("the asymmetric pair fixes blur_p and solarize_p per view (BYOL)")
    views = tuple(
        CropSpec(size, channels=channels, blur_p=b * blur, solarize_p=s * solarize, **view)
        for b, s in BYOL_VIEWS
    )
    return ViewRecipe(recipe, views)


@dataclass(frozen=True)
class NoiseRecipe:
    """Views of a point: ``x + std * noise``, one independent draw per view (the toy data).

    Attributes:
        std: standard deviation of the Gaussian noise (0.3 in the toy experiment).
        num_views: how many views per sample.
    """

    std: float = 0.3
    num_views: int = 2

    def __post_init__(self) -> None:
        check_non_negative(std=self.std)
        if self.num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {self.num_views}")
        object.__setattr__(self, "std", float(self.std))
        object.__setattr__(self, "num_views", int(self.num_views))


@dataclass(frozen=True)
class SmallImageRecipe:
    """Views of a small grayscale image (the digits recipe): random affine, noise, erasing.

    Attributes:
        degrees: maximum rotation in degrees.
        translate: maximum shift as a fraction of the image side.
        scale: (min, max) zoom factor.
        noise_std: std of the additive pixel noise.
        erase_p: probability of erasing a rectangle.
        erase_scale: (min, max) fraction of the image area erased.
        num_views: how many views per sample.
    """

    degrees: float = 10.0
    translate: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)
    noise_std: float = 0.05
    erase_p: float = 0.25
    erase_scale: tuple[float, float] = (0.02, 0.1)
    num_views: int = 2

    def __post_init__(self) -> None:
        scale = check_range("scale", self.scale, upper=None)
        erase_scale = tuple(float(s) for s in self.erase_scale)
        if len(erase_scale) != 2 or not 0 <= erase_scale[0] <= erase_scale[1] <= 1:
            raise ValueError(f"erase_scale must be (min, max) within [0, 1], got {erase_scale}")
        check_non_negative(degrees=self.degrees, translate=self.translate, noise_std=self.noise_std)
        if self.num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {self.num_views}")
        normalised = {"scale": scale, "erase_scale": erase_scale, "num_views": int(self.num_views)}
        normalised["erase_p"] = check_probability("erase_p", self.erase_p)
        for name in ("degrees", "translate", "noise_std"):
            normalised[name] = float(getattr(self, name))
        for name, value in normalised.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class ImageTextRecipe:
    """CLIP's views: a square crop of the image and one phrasing of its caption.

    CLIP (Radford et al. 2021, section 2.5) uses "a random square crop from resized images" as
    its only augmentation: colour jitter or grayscale would contradict captions naming colours.

    Attributes:
        size: S, the side of the crop (the image height by default).
        scale: (min, max) fraction of the image area the square crop keeps.
        flip_p: probability of a horizontal flip (0 as in CLIP: captions may say left/right).
    """

    size: int
    scale: tuple[float, float] = (0.8, 1.0)
    flip_p: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "scale", check_range("scale", self.scale))
        object.__setattr__(self, "flip_p", check_probability("flip_p", self.flip_p))

"""The SimCLR recipe applied to a whole batch at once, on the batch's device.

The per-sample recipe (``contrastkit.transforms.images``, torchvision v2) runs each operation
once per image, paying Python and dispatch overhead per image. Here every operation runs once per
batch with per-sample random parameters: the random resized crop and flip are one
``affine_grid``/``grid_sample`` call with a (B, 2, 3) matrix; brightness, contrast and
saturation are per-sample factors; the hue shift is a rotation of the chroma plane in YIQ space
(an approximation of torchvision's HSV hue shift that needs no colour-space round trip);
grayscale and solarisation are per-sample masks; the Gaussian blur is one grouped, separable
convolution with a per-sample sigma. Differences from torchvision: the jitter operations run in
a fixed order (brightness, contrast, saturation, hue) instead of a random one; crops are sampled
directly (clamped to the image) instead of by rejection; resizing is bilinear without
antialiasing.

Randomness: every random choice of a view is one column of ``u``, a (B, NUM_DRAWS) tensor of
uniform numbers in [0, 1). The trainer draws each sample's row from a generator seeded by
(seed, epoch, sample index) (``contrastkit.training.batches``), so the views of a sample do not
depend
on the batch it lands in, the number of processes or the device: resume stays exact. Called
without ``u``, a transform draws it from the global RNG of the batch's device.

``benchmarks/throughput.py`` compares the two pipelines; the trainer uses this one for image
recipes (``TrainConfig.view_pipeline``).

Letters used in shapes: B batch size, C channels, H/W input size, S output side, k blur kernel,
U uniform draws per sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.transforms.images import blur_kernel_size, check_pair_options

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision
# the columns of u: 0-4 crop area, aspect, x, y, flip; 5-8 brightness, contrast, saturation, hue;
# 9 jitter or not; 10 blur sigma; 11 grayscale or not; 12 blur or not; 13 solarise or not;
# 14 rotation angle; 15 rotate or not
NUM_DRAWS = 16
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


class BatchedSimCLR:
    """One view of every image of a batch: (B, C, H, W) in [0, 1] -> (B, C, S, S).

    Args:
        size: output side S.
        channels: C (1: brightness and contrast only).
        scale, ratio: area fraction and aspect-ratio range of the random resized crop.
        flip_p, jitter_p, gray_p, blur_p, solarize_p: per-sample probabilities.
        jitter: (brightness, contrast, saturation, hue) strengths.
        rotate_p, degrees: probability of rotating the crop, by an angle uniform in
            [-degrees, degrees] (not in the SimCLR recipe; for objects that lie at any angle).
        mean, std: per-channel normalisation applied last; both None keeps [0, 1].
    """

    num_draws = NUM_DRAWS

    def __init__(
        self,
        size: int,
        *,
        channels: int = 3,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        gray_p: float = 0.2,
        blur_p: float = 0.5,
        solarize_p: float = 0.0,
        rotate_p: float = 0.0,
        degrees: float = 180.0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if int(size) <= 0:
            raise ValueError(f"size must be a positive crop side, got {size}")
        scale, ratio = tuple(float(v) for v in scale), tuple(float(v) for v in ratio)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must be (min, max) with 0 < min <= max <= 1, got {scale}")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must be (min, max) with 0 < min <= max, got {ratio}")
        probabilities = {"flip_p": flip_p, "jitter_p": jitter_p, "gray_p": gray_p}
        probabilities |= {"blur_p": blur_p, "solarize_p": solarize_p, "rotate_p": rotate_p}
        for name, p in probabilities.items():
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        if len(jitter) != 4 or min(jitter) < 0:
            raise ValueError(
                f"jitter must be 4 strengths >= 0 (brightness, contrast, saturation, hue), "
                f"got {jitter}"
            )
        if (mean is None) != (std is None):
            raise ValueError(f"pass both mean and std or neither, got mean={mean}, std={std}")
        if mean is not None and (len(mean) != channels or len(std) != channels or min(std) <= 0):
            raise ValueError(
                f"mean and std must hold {channels} values with std > 0, got {mean} and {std}"
            )
        self.size, self.channels = int(size), channels
        self.scale, self.log_ratio = scale, (math.log(ratio[0]), math.log(ratio[1]))
        self.flip_p, self.jitter, self.jitter_p = flip_p, tuple(jitter), jitter_p
        self.gray_p, self.blur_p, self.solarize_p = gray_p, blur_p, solarize_p
        self.rotate_p, self.degrees = rotate_p, float(degrees)
        self.mean, self.std = mean, std
        self.kernel = blur_kernel_size(self.size)

    def __call__(self, x: Tensor, u: Tensor | None = None) -> Tensor:
        """Return one augmented view of each image: (B, C, H, W) -> (B, C, S, S).

        Args:
            x: the images, float in [0, 1].
            u: (B, NUM_DRAWS) uniform numbers in [0, 1) that fix every random choice; None
                draws them from the global RNG of x's device.
        """
        if x.ndim != 4 or x.shape[1] != self.channels or min(x.shape[-2:]) < self.size:
            raise ValueError(
                f"x must be (B, {self.channels}, H, W) with H, W >= {self.size}, "
                f"got {tuple(x.shape)}"
            )
        B = x.shape[0]
        if u is None:
            u = torch.rand(B, NUM_DRAWS, device=x.device, dtype=x.dtype)
        if u.shape != (B, NUM_DRAWS):
            raise ValueError(
                f"u must be (B, {NUM_DRAWS}) = ({B}, {NUM_DRAWS}), got {tuple(u.shape)}"
            )
        u = u.to(x.dtype)
        x = self._crop(x, u[:, :5], u[:, 14:16])
        if self.jitter_p > 0:
            x = self._jitter(x, u[:, 5:9], u[:, 9] < self.jitter_p)
        if self.channels == 3 and self.gray_p > 0:
            to_gray = u[:, 11] < self.gray_p
            x = torch.where(to_gray[:, None, None, None], _gray(x).expand_as(x), x)
        if self.blur_p > 0:
            x = self._blur(x, u[:, 10], u[:, 12] < self.blur_p)
        if self.solarize_p > 0:
            solarize = (u[:, 13] < self.solarize_p)[:, None, None, None]
            x = torch.where(solarize & (x >= 0.5), 1.0 - x, x)
        if self.mean is not None:
            mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype)[:, None, None]
            std = torch.tensor(self.std, device=x.device, dtype=x.dtype)[:, None, None]
            x = (x - mean) / std
        return x

    def _crop(self, x: Tensor, u: Tensor, rotation: Tensor) -> Tensor:
        """Random resized crop, flip and rotation as one affine resampling.

        (B, C, H, W) -> (B, C, S, S). The crop is rotated about its centre by an angle uniform
        in [-degrees, degrees] where ``rotation[:, 1] < rotate_p``; corners that fall outside
        the image repeat its border.
        """
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0]
        log_r = self.log_ratio[0] + (self.log_ratio[1] - self.log_ratio[0]) * u[:, 1]
        w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)  # crop width / image width
        h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
        cx = (1 - w) * (2 * u[:, 2] - 1)  # centre in [-1, 1] coordinates, crop inside image
        cy = (1 - h) * (2 * u[:, 3] - 1)
        flip = torch.where(u[:, 4] < self.flip_p, -1.0, 1.0).to(x.dtype)
        angle = math.radians(self.degrees) * (2 * rotation[:, 0] - 1)
        angle = torch.where(rotation[:, 1] < self.rotate_p, angle, torch.zeros_like(angle))
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(  # rotation @ diag(w * flip, h), then shift to the crop centre
            [
                torch.stack([w * flip * cos, -h * sin, cx], 1),
                torch.stack([w * flip * sin, h * cos, cy], 1),
            ],
            1,
        )  # (B, 2, 3)
        grid = F.affine_grid(theta, [x.shape[0], x.shape[1], self.size, self.size], False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _jitter(self, x: Tensor, u: Tensor, apply: Tensor) -> Tensor:
        """Per-sample brightness, contrast, saturation, hue; identity where ``apply`` is False."""
        brightness, contrast, saturation, hue = self.jitter

        def factor(strength: float, draw: Tensor) -> Tensor:
            f = 1 + strength * (2 * draw - 1)
            return torch.where(apply, f, torch.ones_like(f))[:, None, None, None]  # (B, 1, 1, 1)

        x = (x * factor(brightness, u[:, 0])).clamp(0, 1)
        mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * factor(contrast, u[:, 1]) + mean).clamp(0, 1)
        if self.channels == 3:
            gray = _gray(x)
            x = ((x - gray) * factor(saturation, u[:, 2]) + gray).clamp(0, 1)
            angle = 2 * math.pi * hue * (2 * u[:, 3] - 1) * apply  # (B,)
            x = _rotate_hue(x, angle).clamp(0, 1)
        return x

    def _blur(self, x: Tensor, draw: Tensor, apply: Tensor) -> Tensor:
        """Gaussian blur with sigma uniform in 0.1-2, as a grouped separable convolution."""
        B, C, S, _ = x.shape
        k = self.kernel
        sigma = 0.1 + 1.9 * draw  # (B,)
        offsets = torch.arange(k, device=x.device, dtype=x.dtype) - (k - 1) / 2
        kernel = torch.exp(-(offsets[None] ** 2) / (2 * sigma[:, None] ** 2))  # (B, k)
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        identity = (offsets == 0).to(x.dtype).expand(B, k)
        kernel = torch.where(apply[:, None], kernel, identity).repeat_interleave(C, dim=0)
        flat = F.pad(x.reshape(1, B * C, S, S), [k // 2] * 4, mode="reflect")
        flat = F.conv2d(flat, kernel[:, None, :, None], groups=B * C)  # vertical
        flat = F.conv2d(flat, kernel[:, None, None, :], groups=B * C)  # horizontal
        return flat.reshape(B, C, S, S)


def _gray(x: Tensor) -> Tensor:
    """Luma of RGB (or the image itself for one channel): (B, C, H, W) -> (B, 1, H, W)."""
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(_GRAY, device=x.device, dtype=x.dtype)[:, None, None]
    return (x * weights).sum(dim=1, keepdim=True)


def _rotate_hue(x: Tensor, angle: Tensor) -> Tensor:
    """Rotate the chroma (I, Q) plane of each image by ``angle`` radians: (B, 3, H, W)."""
    to_yiq = torch.tensor(_RGB_TO_YIQ, device=x.device, dtype=x.dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(cos), torch.zeros_like(cos)
    rotation = torch.stack(
        [
            torch.stack([one, zero, zero], 1),
            torch.stack([zero, cos, -sin], 1),
            torch.stack([zero, sin, cos], 1),
        ],
        1,
    )  # (B, 3, 3)
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # (B, 3, 3) in RGB
    return (matrix @ x.flatten(2)).view_as(x)


class BatchedViews:
    """Make V views of a batch: (B, C, H, W) -> V tensors (B, C, S_v, S_v).

    Args:
        transforms: one ``BatchedSimCLR`` per view.

    Attributes:
        num_draws: U = V * NUM_DRAWS, the uniform numbers one sample's views consume.
        min_side: the largest crop side; smaller images cannot be cropped.
    """

    def __init__(self, transforms: Sequence[BatchedSimCLR]) -> None:
        self.transforms = list(transforms)
        self.num_draws = NUM_DRAWS * len(self.transforms)
        self.min_side = max(t.size for t in self.transforms)

    def __call__(self, x: Tensor, u: Tensor | None = None) -> list[Tensor]:
        """Return the views of every image of x; u: (B, U) fixes them (None: global RNG)."""
        if u is None:
            return [t(x) for t in self.transforms]
        if u.ndim != 2 or u.shape[1] != self.num_draws:
            raise ValueError(f"u must be (B, {self.num_draws}), got {tuple(u.shape)}")
        draws = u.split(NUM_DRAWS, dim=1)  # V tensors (B, NUM_DRAWS)
        return [t(x, d) for t, d in zip(self.transforms, draws, strict=True)]

    def __repr__(self) -> str:
        sides = [t.size for t in self.transforms]
        return f"{type(self).__name__}({len(sides)} views of sides {sides})"


def _pair(
    size: int, channels: int, asymmetric: bool, blur: bool = True, solarize: bool = True, **options
) -> list[BatchedSimCLR]:
    if not asymmetric:
        check_pair_options(blur, solarize)
        view = BatchedSimCLR(size, channels=channels, **options)
        return [view, view]
    if {"blur_p", "solarize_p"} & set(options):
        raise ValueError("the asymmetric pair fixes blur_p and solarize_p per view (BYOL)")
    return [
        BatchedSimCLR(size, channels=channels, blur_p=1.0 * blur, **options),
        BatchedSimCLR(
            size, channels=channels, blur_p=0.1 * blur, solarize_p=0.2 * solarize, **options
        ),
    ]


def _multicrop(
    side: int,
    channels: int,
    *,
    n_local: int = 8,
    global_size: int | None = None,
    local_size: int | None = None,
    global_scale: Sequence[float] = (0.4, 1.0),
    local_scale: Sequence[float] = (0.05, 0.4),
    jitter: Sequence[float] = (0.4, 0.4, 0.2, 0.1),
    rotate_p: float = 0.0,
    blur: bool = True,
    solarize: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> list[BatchedSimCLR]:
    from contrastkit.transforms.multicrop import default_local_size

    g = int(global_size) if global_size is not None else side
    loc = int(local_size) if local_size is not None else default_local_size(side)
    if g <= 0 or loc <= 0 or n_local < 0:
        raise ValueError(
            f"global_size and local_size must be > 0 and n_local >= 0, got global_size={g}, "
            f"local_size={loc}, n_local={n_local}"
        )
    common = {
        "channels": channels,
        "jitter": jitter,
        "rotate_p": rotate_p,
        "mean": mean,
        "std": std,
    }
    first = BatchedSimCLR(g, scale=global_scale, blur_p=1.0 * blur, **common)
    second = BatchedSimCLR(
        g, scale=global_scale, blur_p=0.1 * blur, solarize_p=0.2 * solarize, **common
    )
    local = BatchedSimCLR(loc, scale=local_scale, blur_p=0.5 * blur, **common)
    return [first, second] + [local] * int(n_local)


def batched_view_fn(recipe: str, input_shape: Sequence[int], **options) -> BatchedViews:
    """Build the batched counterpart of ``contrastkit.transforms.images.image_view_fn``.

    It takes the same options, with the same defaults (the papers'), plus ``ratio`` for pairs.

    Args:
        recipe: "pair" (SimCLR), "asymmetric_pair" (BYOL) or "multicrop" (DINO: 2 global crops
            at scale 0.4-1, ``n_local`` local crops at scale 0.05-0.4).
        input_shape: (C, H, W) of the images.
        **options: ``size`` and the ``BatchedSimCLR`` options for the pairs; ``n_local``,
            ``global_size``, ``local_size``, ``global_scale``, ``local_scale``, ``jitter``,
            ``rotate_p``, ``blur``, ``mean``, ``std`` for multi-crop; ``blur=False`` turns the
            blur of BYOL's and DINO's fixed per-view recipes off.

    Raises:
        ValueError: unknown recipe or option, or crops larger than the images.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    channels, height, width = (int(s) for s in input_shape)
    side = min(height, width)
    options = dict(options)
    try:
        if recipe in ("pair", "asymmetric_pair"):
            size = int(options.pop("size", side))
            views = _pair(size, channels, recipe == "asymmetric_pair", **options)
        elif recipe == "multicrop":
            views = _multicrop(side, channels, **options)
        else:
            raise ValueError(
                f"unknown recipe {recipe!r}; expected one of: pair, asymmetric_pair, multicrop"
            )
    except TypeError as err:  # an unknown keyword
        raise ValueError(f"view options {sorted(options)} do not fit {recipe!r}: {err}") from err
    fn = BatchedViews(views)
    if fn.min_side > side:
        raise ValueError(
            f"image of size {height}x{width} is too small for crops of size "
            f"{fn.min_side}x{fn.min_side}; expected crop size <= the image's height and width"
        )
    return fn


__all__ = ["NUM_DRAWS", "BatchedSimCLR", "BatchedViews", "batched_view_fn"]

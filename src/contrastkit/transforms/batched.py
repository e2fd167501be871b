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
antialiasing. Randomness comes from the global RNG of the batch's device, per batch.

``benchmarks/throughput.py`` compares the two pipelines.

Letters used in shapes: B batch size, C channels, H/W input size, S output side, k blur kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.transforms.images import blur_kernel_size

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


class BatchedSimCLR:
    """One view of every image of a batch: (B, C, H, W) in [0, 1] -> (B, C, S, S).

    Args:
        size: output side S.
        channels: C (1: brightness and contrast only).
        scale, ratio: area fraction and aspect-ratio range of the random resized crop.
        flip_p, jitter_p, gray_p, blur_p, solarize_p: per-sample probabilities.
        jitter: (brightness, contrast, saturation, hue) strengths.
    """

    def __init__(
        self,
        size: int,
        *,
        channels: int = 3,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        gray_p: float = 0.2,
        blur_p: float = 0.5,
        solarize_p: float = 0.0,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"need 0 < scale <= 1 and 0 < ratio, got {scale} and {ratio}")
        self.size, self.channels = int(size), channels
        self.scale, self.log_ratio = scale, (math.log(ratio[0]), math.log(ratio[1]))
        self.flip_p, self.jitter, self.jitter_p = flip_p, jitter, jitter_p
        self.gray_p, self.blur_p, self.solarize_p = gray_p, blur_p, solarize_p
        self.kernel = blur_kernel_size(self.size)

    def __call__(self, x: Tensor) -> Tensor:
        """Return one augmented view of each image: (B, C, H, W) -> (B, C, S, S)."""
        if x.ndim != 4 or x.shape[1] != self.channels or min(x.shape[-2:]) < self.size:
            raise ValueError(
                f"x must be (B, {self.channels}, H, W) with H, W >= {self.size}, "
                f"got {tuple(x.shape)}"
            )
        B = x.shape[0]
        u = torch.rand(B, 12, device=x.device, dtype=x.dtype)  # every per-sample draw
        x = self._crop(x, u[:, :5])
        if self.jitter_p > 0:
            x = self._jitter(x, u[:, 5:10], u[:, 10] < self.jitter_p)
        if self.channels == 3 and self.gray_p > 0:
            to_gray = torch.rand(B, device=x.device) < self.gray_p
            x = torch.where(to_gray[:, None, None, None], _gray(x).expand_as(x), x)
        if self.blur_p > 0:
            x = self._blur(x, u[:, 11], torch.rand(B, device=x.device) < self.blur_p)
        if self.solarize_p > 0:
            solarize = (torch.rand(B, device=x.device) < self.solarize_p)[:, None, None, None]
            x = torch.where(solarize & (x >= 0.5), 1.0 - x, x)
        return x

    def _crop(self, x: Tensor, u: Tensor) -> Tensor:
        """Random resized crop and flip as one affine resampling: (B, C, H, W) -> (B, C, S, S)."""
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0]
        log_r = self.log_ratio[0] + (self.log_ratio[1] - self.log_ratio[0]) * u[:, 1]
        w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)  # crop width / image width
        h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
        cx = (1 - w) * (2 * u[:, 2] - 1)  # centre in [-1, 1] coordinates, crop inside image
        cy = (1 - h) * (2 * u[:, 3] - 1)
        flip = torch.where(u[:, 4] < self.flip_p, -1.0, 1.0).to(x.dtype)
        zero = torch.zeros_like(w)
        theta = torch.stack(
            [torch.stack([w * flip, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1
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
    """Make V views of a batch: (B, C, H, W) -> V tensors (B, C, S, S).

    Args:
        transforms: one ``BatchedSimCLR`` per view.
    """

    def __init__(self, transforms: Sequence[BatchedSimCLR]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: Tensor) -> list[Tensor]:
        """Return the views of every image of x."""
        return [t(x) for t in self.transforms]


def batched_view_fn(recipe: str, input_shape: Sequence[int], **options) -> BatchedViews:
    """Build the batched counterpart of ``contrastkit.transforms.images.image_view_fn``.

    Args:
        recipe: "pair" (SimCLR), "asymmetric_pair" (BYOL) or "multicrop" (DINO: 2 global crops
            at scale 0.4-1, ``n_local`` local crops at scale 0.05-0.4).
        input_shape: (C, H, W) of the images.
        **options: ``size`` for the pairs; ``n_local``, ``global_size``, ``local_size`` for
            multi-crop.

    Raises:
        ValueError: unknown recipe or option.
    """
    from contrastkit.transforms.multicrop import default_local_size

    channels, height, width = (int(s) for s in input_shape)
    side = min(height, width)
    if recipe in ("pair", "asymmetric_pair"):
        unknown = set(options) - {"size"}
        size = int(options.get("size", side))
        if recipe == "pair":
            views = [BatchedSimCLR(size, channels=channels) for _ in range(2)]
        else:
            views = [
                BatchedSimCLR(size, channels=channels, blur_p=1.0),
                BatchedSimCLR(size, channels=channels, blur_p=0.1, solarize_p=0.2),
            ]
    elif recipe == "multicrop":
        unknown = set(options) - {"n_local", "global_size", "local_size"}
        g = int(options.get("global_size", side))
        loc = int(options.get("local_size", default_local_size(side)))
        jitter = (0.4, 0.4, 0.2, 0.1)
        views = [
            BatchedSimCLR(g, channels=channels, scale=(0.4, 1.0), jitter=jitter, blur_p=1.0),
            BatchedSimCLR(
                g, channels=channels, scale=(0.4, 1.0), jitter=jitter, blur_p=0.1, solarize_p=0.2
            ),
        ]
        local = BatchedSimCLR(loc, channels=channels, scale=(0.05, 0.4), jitter=jitter)
        views += [local] * int(options.get("n_local", 8))
    else:
        raise ValueError(
            f"unknown recipe {recipe!r}; expected one of: pair, asymmetric_pair, multicrop"
        )
    if unknown:
        raise ValueError(f"view options {sorted(unknown)} do not fit the batched {recipe!r}")
    return BatchedViews(views)


__all__ = ["BatchedSimCLR", "BatchedViews", "batched_view_fn"]

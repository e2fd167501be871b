"""The image recipes applied to a whole batch at once, on the batch's device.

What each view does is data (``contrastkit.transforms.recipes.CropSpec``), shared with the
per-sample backend (``contrastkit.transforms.images``, torchvision v2), which runs each operation
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
depend on the batch it lands in, the number of processes or the device: resume stays exact. Called
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

from contrastkit.transforms.options import image_recipe
from contrastkit.transforms.recipes import BLUR_SIGMA, SOLARIZE_THRESHOLD, CropSpec, ViewRecipe

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision
# the columns of u: 0-4 crop area, aspect, x, y, flip; 5-8 brightness, contrast, saturation, hue;
# 9 jitter or not; 10 blur sigma; 11 grayscale or not; 12 blur or not; 13 solarise or not;
# 14 rotation angle; 15 rotate or not
NUM_DRAWS = 16
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


class BatchedSimCLR:
    """One view of every image of a batch: (B, C, H, W) in [0, 1] -> (B, C, S, S).

    Args:
        spec: what the view does (``contrastkit.transforms.recipes.CropSpec``).
        cropped: the images are crops already cut at side S
            (``contrastkit.transforms.full_resolution``): the crop draws are not used, only the
            flip and rotation.
    """

    num_draws = NUM_DRAWS

    def __init__(self, spec: CropSpec, cropped: bool = False) -> None:
        self.spec = spec
        self.cropped = cropped
        self.size = spec.size
        self.log_ratio = (math.log(spec.ratio[0]), math.log(spec.ratio[1]))

    def __call__(self, x: Tensor, u: Tensor | None = None) -> Tensor:
        """Return one augmented view of each image: (B, C, H, W) -> (B, C, S, S).

        Args:
            x: the images, float in [0, 1].
            u: (B, NUM_DRAWS) uniform numbers in [0, 1) that fix every random choice; None
                draws them from the global RNG of x's device.
        """
        spec = self.spec
        if self.cropped and (x.ndim != 4 or x.shape[1:] != (spec.channels, self.size, self.size)):
            raise ValueError(
                f"x must be crops (B, {spec.channels}, {self.size}, {self.size}), "
                f"got {tuple(x.shape)}"
            )
        if x.ndim != 4 or x.shape[1] != spec.channels or min(x.shape[-2:]) < self.size:
            raise ValueError(
                f"x must be (B, {spec.channels}, H, W) with H, W >= {self.size}, "
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
        if spec.jitter_p > 0:
            x = self._jitter(x, u[:, 5:9], u[:, 9] < spec.jitter_p)
        if spec.channels == 3 and spec.gray_p > 0:
            to_gray = u[:, 11] < spec.gray_p
            x = torch.where(to_gray[:, None, None, None], _gray(x).expand_as(x), x)
        if spec.blur_p > 0:
            x = self._blur(x, u[:, 10], u[:, 12] < spec.blur_p)
        if spec.solarize_p > 0:
            solarize = (u[:, 13] < spec.solarize_p)[:, None, None, None]
            x = torch.where(solarize & (x >= SOLARIZE_THRESHOLD), 1.0 - x, x)
        if spec.mean is not None:
            mean = torch.tensor(spec.mean, device=x.device, dtype=x.dtype)[:, None, None]
            std = torch.tensor(spec.std, device=x.device, dtype=x.dtype)[:, None, None]
            x = (x - mean) / std
        return x

    def _crop(self, x: Tensor, u: Tensor, rotation: Tensor) -> Tensor:
        """Random resized crop, flip and rotation as one affine resampling.

        (B, C, H, W) -> (B, C, S, S). The crop is rotated about its centre by an angle uniform
        in [-degrees, degrees] where ``rotation[:, 1] < rotate_p``; corners that fall outside
        the image repeat its border.
        """
        spec = self.spec
        if self.cropped and not (spec.rotate_p > 0 and spec.degrees > 0):
            return torch.where((u[:, 4] < spec.flip_p)[:, None, None, None], x.flip(-1), x)
        area = spec.scale[0] + (spec.scale[1] - spec.scale[0]) * u[:, 0]
        log_r = self.log_ratio[0] + (self.log_ratio[1] - self.log_ratio[0]) * u[:, 1]
        w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)  # crop width / image width
        h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
        if self.cropped:  # the whole crop, only flipped and rotated
            w, h = torch.ones_like(w), torch.ones_like(h)
        cx = (1 - w) * (2 * u[:, 2] - 1)  # centre in [-1, 1] coordinates, crop inside image
        cy = (1 - h) * (2 * u[:, 3] - 1)
        flip = torch.where(u[:, 4] < spec.flip_p, -1.0, 1.0).to(x.dtype)
        angle = math.radians(spec.degrees) * (2 * rotation[:, 0] - 1)
        angle = torch.where(rotation[:, 1] < spec.rotate_p, angle, torch.zeros_like(angle))
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
        spec = self.spec
        brightness, contrast, saturation, hue = spec.jitter

        def factor(strength: float, draw: Tensor) -> Tensor:
            f = 1 + strength * (2 * draw - 1)
            return torch.where(apply, f, torch.ones_like(f))[:, None, None, None]  # (B, 1, 1, 1)

        x = (x * factor(brightness, u[:, 0])).clamp(0, 1)
        mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * factor(contrast, u[:, 1]) + mean).clamp(0, 1)
        if spec.channels == 3:
            gray = _gray(x)
            x = ((x - gray) * factor(saturation, u[:, 2]) + gray).clamp(0, 1)
            angle = 2 * math.pi * hue * (2 * u[:, 3] - 1) * apply  # (B,)
            x = _rotate_hue(x, angle).clamp(0, 1)
        return x

    def _blur(self, x: Tensor, draw: Tensor, apply: Tensor) -> Tensor:
        """Gaussian blur, sigma uniform in ``BLUR_SIGMA``, as one grouped separable convolution."""
        B, C, S, _ = x.shape
        k = self.spec.blur_kernel
        lo, hi = BLUR_SIGMA
        sigma = lo + (hi - lo) * draw  # (B,)
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
    """Make the V views of a recipe for a batch: (B, C, H, W) -> V tensors (B, C, S_v, S_v).

    Args:
        recipe: the views to make (``contrastkit.transforms.recipes``).

    Attributes:
        transforms: one ``BatchedSimCLR`` per view.
        num_draws: U = V * NUM_DRAWS, the uniform numbers one sample's views consume.
        min_side: the largest crop side; smaller images cannot be cropped.
    """

    def __init__(self, recipe: ViewRecipe) -> None:
        self.recipe = recipe
        self.transforms = [BatchedSimCLR(spec) for spec in recipe.views]
        self.num_draws = NUM_DRAWS * len(self.transforms)
        self.min_side = recipe.min_side

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


def batched_view_fn(recipe: str, input_shape: Sequence[int], **options) -> BatchedViews:
    """Build the batched views of an image recipe, from the same data as the per-sample ones.

    Args:
        recipe: "pair" (SimCLR), "asymmetric_pair" (BYOL) or "multicrop" (DINO).
        input_shape: (C, H, W) of the images.
        **options: see ``contrastkit.transforms.options.image_recipe``.

    Raises:
        ValueError: unknown recipe or option, a bad value, or crops larger than the images.
    """
    return BatchedViews(image_recipe(recipe, input_shape, options))


__all__ = ["NUM_DRAWS", "BatchedSimCLR", "BatchedViews", "batched_view_fn"]

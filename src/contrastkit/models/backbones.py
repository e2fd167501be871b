"""Backbones: the encoder f that maps an input to its representation h.

``build_backbone(name, ...)`` returns an ``nn.Module`` whose ``forward`` maps a batch to (B, F)
and whose attribute ``feature_dim`` is F. The names are listed in ``BACKBONES``; any timm model
is available as ``"timm:NAME"`` when the optional ``timm`` extra is installed.

Letters used in shapes: B batch size, C channels, H/W height/width, F feature width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision
from torch import Tensor, nn

from contrastkit.models.vit import VisionTransformer

BACKBONES: tuple[str, ...] = ("mlp", "cnn", "resnet18", "resnet50", "vit")
TIMM_PREFIX = "timm:"


class MLP(nn.Module):
    """Fully connected encoder for points or flattened images: Linear + ReLU per hidden layer.

    Args:
        input_dim: width of one flattened input.
        hidden_dims: widths of the layers; the last one is ``feature_dim``.
        final_relu: apply ReLU after the last layer too (the classic toy encoder does; note that
            cosine similarities between ReLU outputs are never negative).
    """

    def __init__(
        self, input_dim: int, hidden_dims: Sequence[int] = (64, 64), final_relu: bool = True
    ) -> None:
        super().__init__()
        dims = [int(d) for d in hidden_dims]
        if not dims or any(d <= 0 for d in dims):
            raise ValueError(
                f"hidden_dims must be a non-empty list of positive widths, got {list(hidden_dims)}"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (d_in, d_out) in enumerate(zip([input_dim, *dims[:-1]], dims, strict=True)):
            layers.append(nn.Linear(d_in, d_out))
            if i < len(dims) - 1 or final_relu:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)
        self.input_dim = input_dim
        self.feature_dim = dims[-1]

    def forward(self, x: Tensor) -> Tensor:
        """Encode x: (B, input_dim) or (B, C, H, W) -> (B, F)."""
        return self.net(x)


def _conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """A small convolutional encoder for tiny images (8x8 to 64x64).

    3x3 conv blocks (conv, BatchNorm, ReLU): one at full resolution, then stride-2 blocks until
    the feature map is about 2x2 (8px) or 4x4 (32px, 64px), then global average pooling.
    ``feature_dim`` is ``4 * width`` whatever the image size.

    Args:
        in_channels: C of the input.
        image_size: the training image size; it only decides how many stride-2 blocks there are.
        width: channels of the first block.
    """

    def __init__(self, in_channels: int = 3, image_size: int = 32, width: int = 32) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be a positive int, got {width}")
        # 8px -> 2 downsamplings (2x2), 16px -> 2 (4x4), 32px -> 3 (4x4), 64px -> 4 (4x4)
        n_down = max(2, (max(image_size, 1) // 4).bit_length() - 1)
        channels = [width, 2 * width] + [4 * width] * (n_down - 1)
        blocks = [_conv_block(in_channels, channels[0], 1)]
        blocks += [_conv_block(channels[i], channels[i + 1], 2) for i in range(n_down)]
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels[-1]

    def forward(self, x: Tensor) -> Tensor:
        """Encode x: (B, C, H, W) -> (B, 4 * width)."""
        return torch.flatten(self.pool(self.features(x)), 1)


def build_resnet(
    depth: int, in_channels: int = 3, image_size: int = 32, cifar_stem: bool | None = None
) -> torchvision.models.ResNet:
    """Build a torchvision ResNet-18/50 without its classifier (``fc`` is ``nn.Identity``).

    Module names are torchvision's, so ``backbone.state_dict()`` loads with ``strict=True`` into
    ``torchvision.models.resnet18()`` after the same stem change and ``fc = nn.Identity()``.

    Args:
        depth: 18 or 50.
        in_channels: C of the input; the first conv is replaced when it is not 3.
        image_size: decides the default of ``cifar_stem``.
        cifar_stem: replace the 7x7 stride-2 conv and the max-pool by a 3x3 stride-1 conv and no
            pooling (SimCLR's CIFAR variant); default True when ``image_size <= 64``.
    """
    factory = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}[depth]
    model = factory(weights=None)
    if cifar_stem is None:
        cifar_stem = image_size <= 64
    if cifar_stem:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.feature_dim = model.fc.in_features
    model.fc = nn.Identity()
    return model


def build_timm(model_name: str, in_channels: int = 3, **options) -> nn.Module:
    """Create ``timm.create_model(model_name, num_classes=0, pretrained=False)``.

    Raises:
        ValueError: timm is not installed, or it does not know ``model_name``.
    """
    try:
        import timm  # optional extra
    except ImportError as err:
        raise ValueError("timm is not installed; pip install 'contrastkit[timm]'") from err
    try:
        model = timm.create_model(
            model_name, num_classes=0, pretrained=False, in_chans=in_channels, **options
        )
    except RuntimeError as err:  # timm raises RuntimeError("Unknown model ...")
        raise ValueError(f"timm backbone {model_name!r}: {err}") from err
    model.feature_dim = int(model.num_features)
    return model


def _check_options(name: str, options: dict, allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"backbone {name!r} got unknown option(s) {unknown}; "
            f"it accepts: {', '.join(sorted(allowed)) or 'none'}"
        )


def build_backbone(
    name: str,
    *,
    in_channels: int = 3,
    image_size: int = 32,
    input_dim: int | None = None,
    **options,
) -> nn.Module:
    """Build the encoder called ``name``; the result maps (B, ...) -> (B, F), F = ``.feature_dim``.

    Args:
        name: one of ``BACKBONES`` or ``"timm:NAME"``.
        in_channels: C of image inputs.
        image_size: H (= W) of image inputs; sets stem and patch-grid defaults.
        input_dim: width of a flat input for ``"mlp"``; defaults to ``C * H * W``.
        **options: per backbone — mlp: ``hidden_dims``, ``final_relu``; cnn: ``width``;
            resnet18/resnet50: ``cifar_stem``; vit: ``patch_size``, ``dim``, ``depth``,
            ``heads``, ``mlp_ratio``, ``stem`` (``"patch"`` or ``"conv"``); timm: passed to
            ``timm.create_model``.

    Raises:
        ValueError: unknown name or option, or timm not installed.
    """
    if name == "mlp":
        _check_options(name, options, {"hidden_dims", "final_relu"})
        dim = input_dim if input_dim is not None else in_channels * image_size * image_size
        return MLP(dim, **options)
    if name == "cnn":
        _check_options(name, options, {"width"})
        return SmallCNN(in_channels, image_size, **options)
    if name in ("resnet18", "resnet50"):
        _check_options(name, options, {"cifar_stem"})
        return build_resnet(int(name[6:]), in_channels, image_size, **options)
    if name == "vit":
        _check_options(name, options, {"patch_size", "dim", "depth", "heads", "mlp_ratio", "stem"})
        return VisionTransformer(in_channels=in_channels, image_size=image_size, **options)
    if name.startswith(TIMM_PREFIX) and len(name) > len(TIMM_PREFIX):
        return build_timm(name[len(TIMM_PREFIX) :], in_channels, **options)
    valid = ", ".join([*BACKBONES, TIMM_PREFIX + "NAME"])
    raise ValueError(f"unknown backbone {name!r}; expected one of: {valid}")


__all__ = ["BACKBONES", "MLP", "SmallCNN", "TIMM_PREFIX", "build_backbone", "build_resnet"]

"""A small Vision Transformer (Dosovitskiy et al. 2021) that exposes its attention.

Patch embedding (a strided conv, or a convolutional stem), a learned [CLS] token, learned
position embeddings that are interpolated for other image sizes (DINO's local crops), pre-norm
Transformer blocks. The attention module is our own, so the last layer's attention weights are
returned directly, with no forward hooks.

Letters used in shapes: B batch size, T tokens (1 + P), P patches, D width, K heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EXPLICIT_ATTENTION_MAX_TOKENS = 256
"""Sequences up to this length attend through explicit matmul-softmax-matmul on a CPU in bf16/fp16.

PyTorch's fused CPU kernel (``scaled_dot_product_attention``, flash attention) is slow in
reduced precision for short sequences, its backward most (``benchmarks/attention_kernel.py``, bf16
on a 2-core CPU: 4.5x the explicit form's time at 65 tokens, 2.1x at 197; faster at 1,025). The
explicit form keeps the (B, K, T, T) weights for the backward pass, which the fused kernel does
not, hence the bound. Float32 and CUDA always use the fused kernel."""

_REDUCED = (torch.bfloat16, torch.float16)


def explicit_attention_wanted(q: Tensor) -> bool:
    """Return whether ``attend`` computes attention explicitly for queries q (B, K, T, D/K)."""
    return (
        q.device.type == "cpu"
        and q.dtype in _REDUCED
        and q.shape[-2] <= EXPLICIT_ATTENTION_MAX_TOKENS
    )


def attention_weights(q: Tensor, k: Tensor) -> Tensor:
    """Return softmax(q k^T / sqrt(D/K)): q, k (B, K, T, D/K) -> (B, K, T, T), rows sum to 1."""
    return ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(dim=-1)


def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Softmax attention: q, k, v (B, K, T, D/K) -> (B, K, T, D/K), by the faster of two forms.

    The same function as ``F.scaled_dot_product_attention(q, k, v)``: explicit on a CPU in
    reduced precision for short sequences (``EXPLICIT_ATTENTION_MAX_TOKENS``), fused otherwise.
    """
    if not explicit_attention_wanted(q):
        return F.scaled_dot_product_attention(q, k, v)
    return attention_weights(q, k) @ v


class Attention(nn.Module):
    """Multi-head self-attention that can return its softmax weights."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Attend: x (B, T, D) -> (B, T, D), and the weights (B, K, T, T) if asked."""
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, K, T, D/K)
        if not return_attention:
            out = attend(q, k, v)
            return self.proj(out.transpose(1, 2).reshape(B, T, D))
        attn = attention_weights(q, k)  # (B, K, T, T)
        out = (attn @ v).transpose(1, 2).reshape(B, T, D)
        return self.proj(out), attn


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Apply the block: (B, T, D) -> (B, T, D) [, attention (B, K, T, T)]."""
        if return_attention:
            y, attn = self.attn(self.norm1(x), return_attention=True)
            x = x + y
            return x + self.mlp(self.norm2(x)), attn
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


STEMS: tuple[str, ...] = ("patch", "conv")


def conv_stem(in_channels: int, dim: int, patch_size: int) -> nn.Sequential:
    """Return a convolutional stem that maps (B, C, H, W) to (B, dim, H / p, W / p).

    Xiao et al. 2021, "Early Convolutions Help Transformers See Better"
    (https://arxiv.org/abs/2106.14881): a 3x3 conv, then log2(p) 3x3 stride-2 convs doubling the
    width up to ``dim`` (each with BatchNorm and ReLU), then a 1x1 conv in place of the linear
    patch embedding. It makes small ViTs far easier to optimise on small data.
    """
    if patch_size < 1 or patch_size & (patch_size - 1):
        raise ValueError(f"stem='conv' needs patch_size a power of 2, got {patch_size}")
    stages = patch_size.bit_length() - 1  # log2(p) stride-2 convs
    widths = [max(dim >> (stages - i), 8) for i in range(stages + 1)]  # ..., dim/2, dim
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        stride = 1 if i == 0 else 2
        layers += [
            nn.Conv2d(in_channels if i == 0 else widths[i - 1], width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.Conv2d(widths[-1], dim, kernel_size=1))
    return nn.Sequential(*layers)


class VisionTransformer(nn.Module):
    """A small ViT whose ``forward`` returns the final [CLS] feature.

    Args:
        in_channels: C of the input.
        image_size: training image size; the position embeddings are learned for its patch grid
            and interpolated (bicubic, as in DINO) for other sizes.
        patch_size: side of a square patch; default ``max(2, image_size // 8)`` (an 8x8 grid:
            4 for 32px, 8 for 64px, 2 for 8px).
        dim: token width D (``feature_dim``).
        depth: number of blocks.
        heads: attention heads K.
        mlp_ratio: hidden width of the block MLPs relative to D.
        stem: ``"patch"`` (the paper's linear embedding of each patch) or ``"conv"`` (a small
            convolutional stem, see ``conv_stem``; ``patch_size`` must be a power of 2).
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        patch_size: int | None = None,
        dim: int = 192,
        depth: int = 4,
        heads: int = 3,
        mlp_ratio: float = 4.0,
        stem: str = "patch",
    ) -> None:
        super().__init__()
        patch_size = patch_size if patch_size is not None else max(2, image_size // 8)
        if patch_size <= 0 or patch_size > image_size:
            raise ValueError(
                f"patch_size must be in [1, image_size={image_size}], got {patch_size}"
            )
        if depth <= 0:
            raise ValueError(f"depth must be a positive int, got {depth}")
        self.patch_size = patch_size
        self.grid = image_size // patch_size  # patches per side at the training size
        self.heads = heads
        self.feature_dim = dim
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {', '.join(STEMS)}, got {stem!r}")
        self.in_channels = in_channels
        self.patch_embed = (
            nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
            if stem == "patch"
            else conv_stem(in_channels, dim, patch_size)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid**2, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_weights)

    def _position_embedding(self, h: int, w: int) -> Tensor:
        """Return position embeddings for an h x w patch grid: (1, 1 + h*w, D)."""
        if h == w == self.grid:
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        D = patch_pos.shape[-1]
        patch_pos = patch_pos.reshape(1, self.grid, self.grid, D).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=(h, w), mode="bicubic", align_corners=False)
        return torch.cat([cls_pos, patch_pos.permute(0, 2, 3, 1).reshape(1, h * w, D)], dim=1)

    def tokens(self, x: Tensor) -> Tensor:
        """Embed images as tokens: (B, C, H, W) -> (B, 1 + P, D), [CLS] first.

        Pixels beyond the last whole patch (H or W not a multiple of ``patch_size``) are ignored.
        """
        if x.ndim != 4 or min(x.shape[-2:]) < self.patch_size:
            raise ValueError(
                f"x must be (B, C, H, W) with H, W >= patch_size={self.patch_size}, "
                f"got shape {tuple(x.shape)}"
            )
        p = self.patch_size
        x = x[..., : x.shape[-2] // p * p, : x.shape[-1] // p * p]  # whole patches only
        patches = self.patch_embed(x)  # (B, D, H/p, W/p)
        B, D, h, w = patches.shape
        patches = patches.flatten(2).transpose(1, 2)  # (B, P, D)
        tokens = torch.cat([self.cls_token.expand(B, -1, -1), patches], dim=1)
        return tokens + self._position_embedding(h, w)

    def forward(self, x: Tensor) -> Tensor:
        """Encode x: (B, C, H, W) -> the normalised [CLS] token (B, D)."""
        t = self.tokens(x)
        for block in self.blocks:
            t = block(t)
        return self.norm(t)[:, 0]

    def last_attention(self, x: Tensor, layer: int = -1) -> Tensor:
        """Return a block's attention weights: (B, C, H, W) -> (B, K, 1 + P, 1 + P).

        ``layer`` indexes the blocks as a list does: -1 (default) is the last, 0 the first.
        Each row is a softmax over the 1 + P keys and sums to 1.
        """
        depth = len(self.blocks)
        if not -depth <= layer < depth:
            raise ValueError(f"layer must be in [-{depth}, {depth - 1}], got {layer}")
        index = layer % depth
        t = self.tokens(x)
        for block in self.blocks[:index]:
            t = block(t)
        _, attn = self.blocks[index](t, return_attention=True)
        return attn

    def cls_attention(self, x: Tensor, layer: int = -1) -> Tensor:
        """Return the [CLS]-to-patch attention of a block (the last): (B, C, H, W) -> (B, K, P).

        The [CLS] row without its [CLS] column, renormalised so that each head's map sums to 1
        over the P patches (DINO's 60%-of-mass threshold is computed on this normalised map).
        Reshape to ``(B, K, H // patch_size, W // patch_size)`` for a picture.
        """
        cls_row = self.last_attention(x, layer)[:, :, 0, 1:]  # (B, K, P)
        return cls_row / cls_row.sum(dim=-1, keepdim=True)


def _init_weights(module: nn.Module) -> None:
    # ViT/DINO initialisation: truncated normal linear weights, zero biases, unit LayerNorm
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        # patch embedding (and stem convs) as a linear layer over the flattened input (MAE / timm)
        w = module.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


__all__ = [
    "EXPLICIT_ATTENTION_MAX_TOKENS",
    "STEMS",
    "Attention",
    "Block",
    "VisionTransformer",
    "attend",
    "attention_weights",
    "conv_stem",
    "explicit_attention_wanted",
]

"""[CLS] self-attention maps of a Vision Transformer, turned into masks and pictures.

DINO (Caron et al. 2021, https://arxiv.org/abs/2104.14294, section 4.2.1) shows that the last
layer's [CLS]-to-patch attention of a self-supervised ViT segments objects: keeping the smallest
set of patches that holds 60% of a head's attention mass gives a mask whose Jaccard similarity
with the true object mask is far above a supervised ViT's. This module extracts those maps,
thresholds them, scores them, and draws them.

Letters used in shapes: B images, K heads, h/w patch grid, H/W image size, C channels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.checkpoint import atomic_write

# tolerance on the cumulative mass: a set that holds keep_mass up to float rounding is enough
_MASS_EPS = 1e-6


def has_attention(backbone: nn.Module) -> bool:
    """Return True when ``backbone`` exposes ``cls_attention`` and ``patch_size`` (a ViT)."""
    return callable(getattr(backbone, "cls_attention", None)) and hasattr(backbone, "patch_size")


@torch.no_grad()
def cls_attention_maps(backbone: nn.Module, images: Tensor, layer: int = -1) -> Tensor:
    """Return a layer's (the last) [CLS]-to-patch attention of each head as a patch grid.

    Args:
        backbone: a ViT with ``cls_attention(x, layer) -> (B, K, P)`` and ``patch_size``
            (``build_backbone("vit")``).
        images: (B, C, H, W), prepared as the backbone saw its training inputs.
        layer: which block, indexed as a list (-1: the last, as DINO shows; 0: the first).

    Returns:
        (B, K, h, w) with h = H // patch_size, w = W // patch_size; each head's map sums to 1
        over its h * w patches.

    Raises:
        ValueError: the backbone has no attention, or ``images`` is not (B, C, H, W).
    """
    if not has_attention(backbone):
        raise ValueError(
            f"backbone must be a ViT exposing cls_attention (build_backbone('vit')), "
            f"got {type(backbone).__name__}"
        )
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    p = backbone.patch_size
    h, w = images.shape[-2] // p, images.shape[-1] // p
    was_training = backbone.training
    backbone.eval()
    try:
        attn = backbone.cls_attention(images, layer)  # (B, K, P)
    finally:
        backbone.train(was_training)
    return attn.reshape(attn.shape[0], attn.shape[1], h, w).float()


def upsample_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Stretch patch-grid maps to the image size, each patch becoming a block of pixels.

    Nearest-neighbour, as in DINO's visualisation: (..., h, w) -> (..., H, W). Values are
    copied, not rescaled. Boolean masks stay boolean.
    """
    if maps.ndim < 2:
        raise ValueError(f"maps must be (..., h, w), got shape {tuple(maps.shape)}")
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:])
    out = F.interpolate(flat.float(), size=tuple(size), mode="nearest")
    out = out.reshape(*lead, *out.shape[-2:])
    return out.bool() if maps.dtype == torch.bool else out


def attention_mask(attn: Tensor, keep_mass: float = 0.6) -> Tensor:
    """Keep the smallest set of patches holding ``keep_mass`` of each map's attention.

    As in DINO: sort the patches by attention, take the cumulative sum from the largest, and keep
    every patch whose predecessors hold less than ``keep_mass`` of the total (so the kept set
    holds at least ``keep_mass``). Maps need not be normalised; ties are broken by position.

    Args:
        attn: (..., h, w) non-negative maps, e.g. ``cls_attention_maps(...)`` (B, K, h, w).
        keep_mass: fraction of the mass to keep, in (0, 1]; DINO uses 0.6.

    Returns:
        Bool tensor of the same shape as ``attn``.
    """
    if attn.ndim < 2:
        raise ValueError(f"attn must be (..., h, w), got shape {tuple(attn.shape)}")
    if not 0.0 < keep_mass <= 1.0:
        raise ValueError(f"keep_mass must be in (0, 1], got {keep_mass}")
    if bool((attn < 0).any()) or not bool(torch.isfinite(attn).all()):
        raise ValueError("attn must hold finite non-negative values")
    flat = attn.reshape(*attn.shape[:-2], -1).double()  # (..., P)
    total = flat.sum(dim=-1, keepdim=True)
    if bool((total <= 0).any()):
        raise ValueError("attn must have a positive sum in every map")
    values, order = torch.sort(flat / total, dim=-1, descending=True, stable=True)
    before = torch.cumsum(values, dim=-1) - values  # mass of the patches ranked above each one
    keep_sorted = before < keep_mass - _MASS_EPS
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return keep.reshape(attn.shape)


def jaccard(pred_mask: Tensor, true_mask: Tensor) -> Tensor:
    """Return the Jaccard index |pred & true| / |pred | true| of each pair of masks.

    Args:
        pred_mask: (..., H, W) bool.
        true_mask: (..., H, W) bool, broadcastable to ``pred_mask``.

    Returns:
        (...) float; 1.0 where both masks are empty (they agree perfectly).
    """
    if pred_mask.dtype != torch.bool or true_mask.dtype != torch.bool:
        raise ValueError(
            f"pred_mask and true_mask must be bool tensors, got {pred_mask.dtype} and "
            f"{true_mask.dtype}"
        )
    if pred_mask.ndim < 2 or pred_mask.shape[-2:] != true_mask.shape[-2:]:
        raise ValueError(
            f"pred_mask and true_mask must be (..., H, W) with the same H, W, got "
            f"{tuple(pred_mask.shape)} and {tuple(true_mask.shape)}"
        )
    inter = (pred_mask & true_mask).sum(dim=(-2, -1)).float()
    union = (pred_mask | true_mask).sum(dim=(-2, -1)).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def load_image(
    path: str | os.PathLike, size: int, *, channels: int = 3, multiple: int = 1
) -> Tensor:
    """Read an image file for a ViT: shorter side resized to ``size``, aspect ratio kept.

    Both sides are then centre-cropped down to a multiple of ``multiple`` (the patch size), so
    that every pixel falls in a whole patch.

    Args:
        path: any image file Pillow can read.
        size: length of the shorter side after resizing.
        channels: 3 (RGB) or 1 (grayscale).
        multiple: the output H and W are multiples of it.

    Returns:
        (C, H, W) float in [0, 1].

    Raises:
        OSError: the file is missing, is not a readable image, or is a decompression bomb.
        ValueError: ``size``, ``channels`` or ``multiple`` out of range.
    """
    from PIL import Image

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if multiple < 1 or size < multiple:
        raise ValueError(f"size must be >= multiple >= 1, got size={size}, multiple={multiple}")
    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if channels == 3 else "L")
            scale = size / min(img.size)
            new_w = max(multiple, round(img.width * scale))
            new_h = max(multiple, round(img.height * scale))
            img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
            array = np.asarray(img, dtype=np.float32) / 255.0
    except Image.DecompressionBombError as err:  # more pixels than PIL's safety limit
        raise OSError(f"cannot read image {str(path)!r}: {err}") from err
    except OSError as err:
        reason = err.strerror or str(err).replace(str(path), "").strip(" :'\"") or "unreadable"
        raise OSError(f"cannot read image {str(path)!r}: {reason}") from err
    x = torch.from_numpy(array.copy())
    x = x.permute(2, 0, 1) if x.ndim == 3 else x[None]  # (C, H, W)
    H, W = (x.shape[1] // multiple) * multiple, (x.shape[2] // multiple) * multiple
    top, left = (x.shape[1] - H) // 2, (x.shape[2] - W) // 2
    return x[:, top : top + H, left : left + W].contiguous()


def _check_figure_inputs(images: Tensor, maps: Tensor, true_masks: Tensor | None) -> None:
    if images.ndim != 4 or maps.ndim != 4 or images.shape[0] != maps.shape[0]:
        raise ValueError(
            f"images must be (B, C, H, W) and maps (B, K, h, w) with the same B, got "
            f"{tuple(images.shape)} and {tuple(maps.shape)}"
        )
    expected = (images.shape[0], *images.shape[-2:])
    if true_masks is not None and tuple(true_masks.shape) != expected:
        raise ValueError(
            f"true_masks must be (B, H, W) = {expected}, got {tuple(true_masks.shape)}"
        )


def _draw_panel(ax, kind: str, data: np.ndarray, picture: np.ndarray) -> None:
    """Draw one panel: the picture (H, W[, 3]), a heat map (H, W) over it, or a mask (H, W)."""
    gray_cmap = None if picture.ndim == 3 else "gray"
    if kind == "image":
        ax.imshow(data, cmap=gray_cmap, vmin=0, vmax=1)
    elif kind == "heat":
        gray = picture.mean(axis=-1) if picture.ndim == 3 else picture
        ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
        ax.imshow(data, cmap="inferno", alpha=0.75, interpolation="nearest")
    else:  # the image where the mask is on, darkened elsewhere
        shade = np.where(np.asarray(data, dtype=bool), 1.0, 0.15)
        shaded = picture * (shade[..., None] if picture.ndim == 3 else shade)
        ax.imshow(shaded, cmap=gray_cmap, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def save_attention_figure(
    path: str | os.PathLike,
    images: Tensor,
    maps: Tensor,
    *,
    true_masks: Tensor | None = None,
    keep_mass: float = 0.6,
    row_titles: Sequence[str] | None = None,
    panel_inches: float = 1.4,
) -> Path:
    """Draw a grid (one row per image) and write it as a PNG, atomically.

    Columns: the image, each head's attention over it, the mean over heads, the mean's
    ``keep_mass`` mask, and the true mask when ``true_masks`` is given. The figure is drawn on
    its own Agg canvas, without pyplot, so the caller's matplotlib backend is left alone.

    Args:
        path: where to write the PNG (written to a temporary file, then renamed).
        images: (B, C, H, W) in [0, 1], C = 1 or 3, as the eye should see them.
        maps: (B, K, h, w) attention per head (``cls_attention_maps``).
        true_masks: optional (B, H, W) bool object masks.
        keep_mass: mass kept by the drawn mask.
        row_titles: optional B labels drawn left of each row.
        panel_inches: side of one panel in inches (100 dpi).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _check_figure_inputs(images, maps, true_masks)
    B, K = maps.shape[:2]
    size = tuple(images.shape[-2:])
    mean = maps.mean(dim=1, keepdim=True)  # (B, 1, h, w)
    heat = upsample_maps(torch.cat([maps, mean], dim=1), size)  # (B, K + 1, H, W)
    mean_mask = upsample_maps(attention_mask(mean[:, 0], keep_mass), size)  # (B, H, W)
    titles = ["image", *[f"head {k}" for k in range(K)], "mean", f"{keep_mass:.0%} mask"]
    if true_masks is not None:
        titles.append("true mask")
    cols = len(titles)
    fig = Figure(figsize=(panel_inches * cols, panel_inches * B + 0.3), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(B, cols, squeeze=False)
    pictures = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    heat_np = heat.detach().cpu().numpy()
    for b in range(B):
        picture = pictures[b] if pictures.shape[-1] == 3 else pictures[b, ..., 0]
        panels = [("image", picture)]
        panels += [("heat", heat_np[b, k]) for k in range(K + 1)]
        panels.append(("mask", mean_mask[b].cpu().numpy()))
        if true_masks is not None:
            panels.append(("mask", true_masks[b].cpu().numpy()))
        for c, (kind, data) in enumerate(panels):
            _draw_panel(axes[b, c], kind, data, picture)
            if b == 0:
                axes[b, c].set_title(titles[c], fontsize=8)
        if row_titles is not None:
            axes[b, 0].set_ylabel(row_titles[b], fontsize=8)
    fig.tight_layout(pad=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda handle: fig.savefig(handle, format="png", dpi=fig.dpi))
    return out


__all__ = [
    "attention_mask",
    "cls_attention_maps",
    "has_attention",
    "jaccard",
    "load_image",
    "save_attention_figure",
    "upsample_maps",
]

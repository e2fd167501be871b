"""InfoNCE family: NT-Xent (SimCLR), InfoNCE with a queue or in-batch keys (MoCo), CLIP.

Letters: N samples on this process, W processes, D embedding width, K extra negatives.

All three normalise their inputs to unit length, so a logit is ``cos(a, b) / temperature`` (or
``cos * logit_scale``). Each computes either densely (one (rows, columns) logit matrix and
``F.cross_entropy``) or tiled (``contrastkit.losses.tiled``: same values and gradients, O(N * D)
memory). ``impl="auto"`` picks tiled when the logit matrix would hold at least
``AUTO_TILED_MIN_LOGITS`` entries for the device type: 1024 x 1024 on CPU, where tiled is
already as fast as dense and 5x faster at 2N = 4096, and 8192 x 8192 on a GPU, where dense is
faster up to 2N = 4096 and tiled from 2N = 16384 on (benchmarks/loss_scaling.py, H200).

Under torch.distributed (W > 1) every process keeps its own rows and compares them with the
columns of all processes, gathered in rank order with gradient; the loss is the mean over local
rows (see ``contrastkit.distributed`` for why this gives the exact global gradient).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.losses.checks import (
    check_matrix,
    check_min_rows,
    check_pair,
    check_positive,
    full_precision,
    no_autocast,
)
from contrastkit.losses.tiled import FAST_BOUND, cross_lse, resolve_tile_size, symmetric_lse

AUTO_TILED_MIN_LOGITS = {"cpu": 1024 * 1024, "accelerator": 8192 * 8192}
IMPLS = ("auto", "dense", "tiled")


def _tiled(impl: str, rows: int, cols: int, tile_size: int | None, device: torch.device) -> bool:
    """Return whether to use the tiled implementation (validating impl and tile_size)."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    resolve_tile_size(tile_size, device)
    threshold = AUTO_TILED_MIN_LOGITS["cpu" if device.type == "cpu" else "accelerator"]
    return impl == "tiled" or (impl == "auto" and rows * cols >= threshold)


def _check_batch(name: str, x: Tensor) -> None:
    check_min_rows(name, x, 2, "the other samples are the negatives")


def _bound(scale: float | Tensor) -> float | None:
    """Return |logit| <= bound for unit vectors when the scale is a Python number."""
    return float(scale) if isinstance(scale, (int, float)) else None


def nt_xent(
    z1: Tensor,
    z2: Tensor,
    temperature: float = 0.5,
    *,
    impl: str = "auto",
    tile_size: int | None = None,
) -> Tensor:
    """Compute SimCLR's NT-Xent loss over the 2N views of a batch.

    Every one of the 2N views is an anchor: its partner view is the positive, the other 2N - 2
    views are negatives, its similarity with itself is left out (Chen et al. 2020,
    https://arxiv.org/abs/2002.05709). With W processes the views of rank r are columns
    ``r * 2N + [0, 2N)`` of the gathered (W * 2N, D) matrix (its z1 rows, then its z2 rows).

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views; row i is the positive of z1's row i.
        temperature: softmax temperature (> 0); 0.5 is the paper's value for batch 4096.
        impl: "dense", "tiled" or "auto" (see the module docstring).
        tile_size: rows/columns per tile for the tiled implementation (None: device default).

    Returns:
        Scalar: mean over the 2N local anchors of -log softmax(positive).
    """
    check_pair("z1", z1, "z2", z2)
    _check_batch("z1", z1)
    check_positive("temperature", temperature)
    n, W = z1.shape[0], distributed.world_size()
    with no_autocast(z1):
        z = F.normalize(torch.cat([full_precision(z1), full_precision(z2)]), dim=1)  # (2N, D)
        columns = distributed.gather(z)  # (W * 2N, D)
        offset = distributed.rank() * 2 * n  # this process's first column
        if _tiled(impl, 2 * n, columns.shape[0], tile_size, z.device):
            pos = (z[:n] * z[n:]).sum(1) / temperature  # (N,), each pair is anchored twice
            scale, bound = 1 / temperature, _bound(1 / temperature)
            if W == 1 and bound is not None and bound <= FAST_BOUND:
                lse = symmetric_lse(z, bound, tile_size)
            else:
                lse = cross_lse(z * scale, columns, tile_size, mask_offset=offset, bound=bound)
            return (lse.sum() - 2 * pos.sum()) / (2 * n)
        logits = (z / temperature) @ columns.T  # (2N, W * 2N)
        logits.diagonal(offset).fill_(float("-inf"))  # a view is not its own negative
        local = torch.arange(2 * n, device=z.device)
        return F.cross_entropy(logits, offset + (local + n) % (2 * n))


def info_nce(
    query: Tensor,
    key: Tensor,
    negatives: Tensor | None = None,
    temperature: float = 0.2,
    *,
    impl: str = "auto",
    tile_size: int | None = None,
) -> Tensor:
    """Compute the InfoNCE loss of queries against their keys (MoCo).

    With ``negatives`` (MoCo v1/v2, He et al. 2019, https://arxiv.org/abs/1911.05722): the logits
    of query i are ``[q_i . k_i, q_i . n_1, ..., q_i . n_K] / temperature`` and the label is 0;
    other keys of the batch are not negatives. The queue is already global under W processes,
    so it is not gathered. Without ``negatives`` (MoCo v3, Chen et al. 2021,
    https://arxiv.org/abs/2104.02057): the keys of the whole (gathered) batch are the columns,
    query i of rank r has label ``r * N + i``. MoCo v3 multiplies this loss by 2 * temperature;
    that is the caller's choice.

    Args:
        query: (N, D) queries (gradient flows).
        key: (N, D) keys; row i is the positive of query i (MoCo detaches them).
        negatives: (K, D) extra negatives such as a queue, or None.
        temperature: softmax temperature (> 0); 0.2 as in MoCo v2 / v3.
        impl: "dense", "tiled" or "auto" (see the module docstring).
        tile_size: rows/columns per tile for the tiled implementation (None: device default).

    Returns:
        Scalar: mean over the N local queries of -log softmax(positive).
    """
    check_pair("query", query, "key", key)
    check_positive("temperature", temperature)
    if negatives is not None:
        check_matrix("negatives", negatives, "(K, D)")
        if negatives.shape[1] != query.shape[1]:
            raise ValueError(
                f"negatives must have shape (K, D) with D = {query.shape[1]} as query, "
                f"got {tuple(negatives.shape)}"
            )
    else:
        _check_batch("query", query)
    with no_autocast(query):
        q = F.normalize(full_precision(query), dim=1)
        k = F.normalize(full_precision(key), dim=1)
        pos = (q * k).sum(1) / temperature  # (N,)
        bound = _bound(1 / temperature)
        if negatives is not None:
            neg = F.normalize(full_precision(negatives), dim=1)
            if _tiled(impl, q.shape[0], neg.shape[0] + 1, tile_size, q.device):
                lse = torch.logaddexp(pos, cross_lse(q / temperature, neg, tile_size, bound=bound))
                return (lse - pos).mean()
            logits = torch.cat([pos[:, None], (q / temperature) @ neg.T], dim=1)  # (N, 1 + K)
            return F.cross_entropy(logits, torch.zeros_like(pos, dtype=torch.long))
        columns = distributed.gather(k)  # (W * N, D)
        offset = distributed.rank() * q.shape[0]
        if _tiled(impl, q.shape[0], columns.shape[0], tile_size, q.device):
            lse = cross_lse(q / temperature, columns, tile_size, bound=bound)
            return (lse - pos).mean()
        labels = offset + torch.arange(q.shape[0], device=q.device)
        return F.cross_entropy((q / temperature) @ columns.T, labels)


def clip_loss(
    image: Tensor,
    text: Tensor,
    logit_scale: Tensor | float,
    *,
    impl: str = "auto",
    tile_size: int | None = None,
) -> Tensor:
    """Compute CLIP's symmetric contrastive loss between paired image and text embeddings.

    The mean of the image -> text and text -> image cross-entropies over the N x N cosine logits
    scaled by ``logit_scale`` (Radford et al. 2021, https://arxiv.org/abs/2103.00020). With W
    processes: local images against all gathered texts, and local texts against all gathered
    images; pair i of rank r has label ``r * N + i``.

    Args:
        image: (N, D) image embeddings.
        text: (N, D) text embeddings; row i belongs with image row i.
        logit_scale: 0-dim tensor holding the scale itself (e.g. ``log_scale.exp()``, 1/0.07 at
            the start of CLIP training); its gradient is computed. A Python float also works.
        impl: "dense", "tiled" or "auto" (see the module docstring).
        tile_size: rows/columns per tile for the tiled implementation (None: device default).

    Returns:
        Scalar loss.
    """
    check_pair("image", image, "text", text)
    _check_batch("image", image)
    if isinstance(logit_scale, Tensor) and logit_scale.ndim != 0:
        raise ValueError(
            f"logit_scale must be a 0-dim tensor (the scale, not its log), "
            f"got shape {tuple(logit_scale.shape)}"
        )
    check_positive("logit_scale", logit_scale)
    n, W = image.shape[0], distributed.world_size()
    with no_autocast(image):
        img = F.normalize(full_precision(image), dim=1)
        txt = F.normalize(full_precision(text), dim=1)
        scale = logit_scale.to(img.dtype) if isinstance(logit_scale, Tensor) else logit_scale
        pos = scale * (img * txt).sum(1)  # (N,)
        all_img = distributed.gather(img)  # (W * N, D)
        all_txt = distributed.gather(txt)
        if _tiled(impl, n, W * n, tile_size, img.device):
            bound = _bound(scale)
            if bound is None and img.device.type == "cpu":
                bound = float(scale.detach())  # free on CPU (no device sync): direct exp
            if W == 1:
                rows, cols = cross_lse(img * scale, txt, tile_size, columns=True, bound=bound)
            else:
                rows = cross_lse(img * scale, all_txt, tile_size, bound=bound)
                cols = cross_lse(txt * scale, all_img, tile_size, bound=bound)
            return (rows.sum() + cols.sum() - 2 * pos.sum()) / (2 * n)
        labels = distributed.rank() * n + torch.arange(n, device=img.device)
        if W == 1:
            logits = scale * img @ txt.T  # (N, N)
            return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        image_to_text = scale * img @ all_txt.T  # (N, W * N)
        text_to_image = scale * txt @ all_img.T
        loss = F.cross_entropy(image_to_text, labels) + F.cross_entropy(text_to_image, labels)
        return loss / 2


def info_nce_bound(num_negatives: int) -> float:
    """Return log(K + 1): the largest mutual information InfoNCE can certify with K negatives.

    InfoNCE >= log(K + 1) - I(x; y) (van den Oord et al. 2018, https://arxiv.org/abs/1807.03748),
    so a loss of 0 certifies at most log(K + 1) nats; NT-Xent with 2N views has K = 2N - 2.
    """
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 0:
        raise ValueError(f"num_negatives must be an int >= 0, got {num_negatives!r}")
    return math.log(num_negatives + 1)


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent`; ``forward(z1, z2)`` with z1, z2: (N, D)."""

    def __init__(
        self, temperature: float = 0.5, *, impl: str = "auto", tile_size: int | None = None
    ) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        self.temperature, self.impl, self.tile_size = temperature, impl, tile_size

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return nt_xent(z1, z2, self.temperature, impl=self.impl, tile_size=self.tile_size)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, impl={self.impl!r}"


class InfoNCELoss(nn.Module):
    """Module form of :func:`info_nce`; ``forward(query, key, negatives=None)``."""

    def __init__(
        self, temperature: float = 0.2, *, impl: str = "auto", tile_size: int | None = None
    ) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        self.temperature, self.impl, self.tile_size = temperature, impl, tile_size

    def forward(self, query: Tensor, key: Tensor, negatives: Tensor | None = None) -> Tensor:
        return info_nce(
            query, key, negatives, self.temperature, impl=self.impl, tile_size=self.tile_size
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, impl={self.impl!r}"


class CLIPLoss(nn.Module):
    """Module form of :func:`clip_loss`; ``forward(image, text, logit_scale)``.

    The learnable logit scale belongs to the model (a loss holds no state).
    """

    def __init__(self, *, impl: str = "auto", tile_size: int | None = None) -> None:
        super().__init__()
        self.impl, self.tile_size = impl, tile_size

    def forward(self, image: Tensor, text: Tensor, logit_scale: Tensor | float) -> Tensor:
        return clip_loss(image, text, logit_scale, impl=self.impl, tile_size=self.tile_size)

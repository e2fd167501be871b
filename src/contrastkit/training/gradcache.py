"""Gradient caching: a contrastive step on a batch larger than memory, with the same gradient.

Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup"
(https://arxiv.org/abs/2101.06983). A contrastive loss couples every sample of the batch, so
the batch cannot simply be split into micro-batches. But the loss only sees the embeddings z,
which are small. So:

1. embed the batch chunk by chunk without building a graph, saving each chunk's RNG state;
2. compute the loss on all embeddings and its gradient dL/dz (the only full-batch step; with a
   tiled loss it needs O(N * D) memory);
3. re-run each chunk with its saved RNG state (same dropout, same random ops), this time with a
   graph, and backpropagate the cached dL/dz of that chunk into the parameters.

Parameter gradients are sums over chunks, so they equal the full batch's for encoders without
batch statistics (up to float rounding). With BatchNorm in training mode each chunk is normalised
with its own statistics, exactly as a micro-batch would be: the loss is then that of a different
(chunk-normalised) network, and running statistics are updated once per chunk.

A method supports gradient caching when it declares ``supports_gradient_cache = True`` and
implements the two halves of its ``training_step`` (declared in ``contrastkit.methods.base``):

    embed_views(views: list[Tensor]) -> list[Tensor]      # V inputs (B, ...) -> E embeddings (B, D)
    loss_from_embeddings(zs: list[Tensor]) -> dict         # {"loss": scalar, ...}, as training_step

so that ``training_step(views) == loss_from_embeddings(embed_views(views))``. Every row of an
embedding must depend only on the same row of the inputs. ``cached_step`` returns that dict,
``"state/..."`` entries included, for the trainer to hand to ``method.after_step``.

Letters used in shapes: B batch size (this process), C chunk size, D embedding width.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from contrastkit.training import ddp


def supports_gradient_cache(method: nn.Module | type) -> bool:
    """Return the method's (or method class's) declared ``supports_gradient_cache``."""
    return getattr(method, "supports_gradient_cache", False) is True


def check_gradient_cache(method: nn.Module, chunk_size: int) -> None:
    """Raise ValueError unless ``method`` supports gradient caching with ``chunk_size`` >= 1."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if not supports_gradient_cache(method):
        from contrastkit.methods import METHODS  # the registry imports every method

        names = [n for n, cls in METHODS.items() if supports_gradient_cache(cls)]
        this = next((n for n, cls in METHODS.items() if type(method) is cls), type(method).__name__)
        raise ValueError(
            f"--chunk-size works with contrastive methods: {', '.join(names)}; {this} does not "
            "split its training_step into embed_views/loss_from_embeddings (train it without "
            "--chunk-size)"
        )


def cached_step(
    method: nn.Module,
    views: list[Tensor],
    chunk_size: int,
    *,
    backward: Callable[[Tensor], None] | None = None,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict[str, Tensor]:
    """Compute the loss on ``views`` and accumulate its gradient, embedding C samples at a time.

    Gradients are accumulated into ``.grad`` (call ``optimizer.zero_grad()`` before, as for
    ``loss.backward()``) and, under ``torch.distributed``, averaged over processes as DDP would.

    Args:
        method: a method with ``embed_views`` and ``loss_from_embeddings`` (see module doc).
        views: V tensors, each (B, ...): this process's batch.
        chunk_size: C, the most samples embedded at once (the batch is cut into ceil(B / C)
            near-equal chunks); peak activation memory is that of C samples.
        backward: runs the backward pass of the loss (default ``loss.backward()``; pass e.g.
            ``lambda loss: scaler.scale(loss).backward()`` for mixed precision). The cached
            embedding gradients carry whatever scale it applied.
        autocast: a context factory wrapped around every forward computation (e.g. autocast).

    Returns:
        The dict of ``loss_from_embeddings`` with every tensor detached, ``"state/..."``
        entries included: what ``method.after_step`` needs, as from ``training_step``.

    Raises:
        ValueError: the method lacks the interface, ``chunk_size`` < 1, or views differ in B.
    """
    check_gradient_cache(method, chunk_size)
    sizes = {int(v.shape[0]) for v in views}
    if len(sizes) != 1:
        raise ValueError(
            f"views must share their batch size B, got shapes {[tuple(v.shape) for v in views]}"
        )
    device = views[0].device
    # ceil(B / C) chunks of near-equal size (<= C), so no chunk is a lone leftover sample
    pieces = -(-sizes.pop() // chunk_size)
    chunks = list(zip(*(v.tensor_split(pieces) for v in views), strict=True))  # V x (<=C, ...)

    # 1. embed without a graph, remembering each chunk's RNG state and the BatchNorm buffers
    norms = _batch_norm_buffers(method)
    states, parts = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(_rng_state(device))
            with autocast():
                parts.append([z.detach() for z in method.embed_views(list(chunk))])
    _restore_buffers(norms)  # step 3 updates the running statistics once per chunk

    # 2. the loss on all embeddings, and its gradient dL/dz
    zs = [torch.cat(column).requires_grad_() for column in zip(*parts, strict=True)]  # E x (B, D)
    with torch.enable_grad():
        with autocast():
            out = method.loss_from_embeddings(zs)
        (backward or Tensor.backward)(out["loss"])
    grads = [z.grad if z.grad is not None else torch.zeros_like(z) for z in zs]
    after_loss = _rng_state(device)
    offsets = [0]
    for chunk in chunks:
        offsets.append(offsets[-1] + int(chunk[0].shape[0]))

    # 3. re-embed each chunk with its saved RNG state and backpropagate the cached gradient
    with torch.enable_grad():
        for chunk, state, start, stop in zip(chunks, states, offsets, offsets[1:], strict=False):
            _set_rng_state(state, device)
            with autocast():
                z_chunk = method.embed_views(list(chunk))
            torch.autograd.backward(z_chunk, [g[start:stop] for g in grads])
    _set_rng_state(after_loss, device)  # as if each chunk had run once

    ddp.average_gradients_(method.parameters())
    return {k: v.detach() if isinstance(v, Tensor) else v for k, v in out.items()}


def _rng_state(device: torch.device) -> tuple[Tensor, Tensor | None]:
    """Capture the CPU generator and, on an accelerator, the generator of ``device``."""
    module = _accelerator(device)
    return torch.get_rng_state(), module.get_rng_state(device) if module else None


def _set_rng_state(state: tuple[Tensor, Tensor | None], device: torch.device) -> None:
    cpu, accelerator = state
    torch.set_rng_state(cpu)
    module = _accelerator(device)
    if module is not None and accelerator is not None:
        module.set_rng_state(accelerator, device)


def _accelerator(device: torch.device):
    """Return ``torch.cuda`` (or the matching module) for an accelerator device, else None."""
    if device.type == "cpu":
        return None
    module = getattr(torch, device.type, None)
    return module if hasattr(module, "get_rng_state") else None


def _batch_norm_buffers(method: nn.Module) -> list[tuple[Tensor, Tensor]]:
    """Snapshot the running statistics that a training-mode forward pass would update."""
    saved = []
    for module in method.modules():
        if isinstance(module, _BatchNorm) and module.training and module.track_running_stats:
            for buffer in (module.running_mean, module.running_var, module.num_batches_tracked):
                saved.append((buffer, buffer.clone()))
    return saved


def _restore_buffers(saved: list[tuple[Tensor, Tensor]]) -> None:
    with torch.no_grad():
        for buffer, value in saved:
            buffer.copy_(value)


__all__ = ["cached_step", "check_gradient_cache", "supports_gradient_cache"]

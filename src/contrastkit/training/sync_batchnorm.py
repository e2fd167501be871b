"""BatchNorm whose batch statistics span every process (``--sync-bn``), on any device.

Under DDP each process normally normalises with the statistics of its own local batch, so a
2-process run with global batch B does not compute what one process with the same B does.
``convert_sync_batch_norm`` swaps every BatchNorm layer for ``SyncBatchNorm``, which combines the
per-process counts, means and sums of squared deviations (Chan et al.'s parallel variance) through
``contrastkit.distributed.gather``, keeping the gradient. Unlike ``torch.nn.SyncBatchNorm`` it also
runs on CPU with the gloo backend. On one process, and in eval mode, it is plain BatchNorm; its
state dict has the same keys, so checkpoints load into ordinary BatchNorm layers.

Letters used in shapes: N batch size, C channels, W world size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from contrastkit import distributed


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over the global batch of every process; input (N, C, ...)."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim < 2:
            raise ValueError(f"input must be (N, C, ...), got shape {tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input`` (N, C, ...) with statistics of the batch on every process."""
        self._check_input_dim(input)
        if not (self.training and distributed.is_distributed()):
            return super().forward(input)
        dims = [0, *range(2, input.ndim)]
        count = input.numel() // input.shape[1]
        mean = input.mean(dims)  # (C,)
        m2 = (input - _expand(mean, input)).square().sum(dims)  # (C,)
        count_t = torch.full_like(mean[:1], float(count))
        stats = distributed.gather(torch.cat([count_t, mean, m2])[None], name="batch statistics")
        C = mean.numel()
        counts = stats[:, :1].detach()  # (W, 1) sample counts: constants
        means, m2s = stats[:, 1 : 1 + C], stats[:, 1 + C :]  # (W, C) each
        total = float(counts.sum())
        global_mean = (counts * means).sum(0) / total  # (C,)
        global_m2 = (m2s + counts * (means - global_mean).square()).sum(0)  # Chan et al.
        var = global_m2 / total  # biased, used to normalise
        if self.track_running_stats:
            self._update_running_stats(global_mean.detach(), global_m2.detach(), total)
        out = (input - _expand(global_mean, input)) * _expand(torch.rsqrt(var + self.eps), input)
        if self.affine:
            out = out * _expand(self.weight, input) + _expand(self.bias, input)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, m2: Tensor, total: float) -> None:
        self.num_batches_tracked.add_(1)
        # momentum None means a cumulative moving average, as in BatchNorm
        momentum = self.momentum
        factor = 1.0 / float(self.num_batches_tracked) if momentum is None else momentum
        unbiased = m2 / max(total - 1.0, 1.0)
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


def _expand(v: Tensor, like: Tensor) -> Tensor:
    """Shape a per-channel (C,) vector to broadcast against (N, C, ...)."""
    return v.reshape(1, -1, *([1] * (like.ndim - 2)))


def convert_sync_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer of ``module`` by ``SyncBatchNorm``, keeping its state.

    Returns:
        ``module`` with its layers replaced in place (a new module if ``module`` itself is a
        BatchNorm layer).
    """
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        converted = SyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            **_factory(module),
        )
        converted.load_state_dict(module.state_dict())
        converted.train(module.training)
        if module.affine:
            converted.weight.requires_grad_(module.weight.requires_grad)
            converted.bias.requires_grad_(module.bias.requires_grad)
        return converted
    for name, child in module.named_children():
        setattr(module, name, convert_sync_batch_norm(child))
    return module


def _factory(module: _BatchNorm) -> dict:
    """Return the device and dtype of a BatchNorm layer's floating-point state."""
    for tensor in (module.weight, module.running_mean):
        if tensor is not None:
            return {"device": tensor.device, "dtype": tensor.dtype}
    return {}


__all__ = ["SyncBatchNorm", "convert_sync_batch_norm"]

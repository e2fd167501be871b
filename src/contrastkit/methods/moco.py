"""MoCo: a momentum key encoder, with a queue of past keys (v2) or in-batch keys (v3).

- MoCo v2 (Chen et al. 2020, https://arxiv.org/abs/2003.04297, on top of He et al. 2019,
  https://arxiv.org/abs/1911.05722): query q = g(f(x1)), key k = g'(f'(x2)) from a momentum copy
  (m = 0.999); InfoNCE of q against its key and the K keys of past batches held in a queue
  (K = 65536, temperature 0.2); 2-layer MLP head to 128-d.
- MoCo v3 (Chen, Xie & He 2021, https://arxiv.org/abs/2104.02057): no queue, the other keys of the
  batch are the negatives; a predictor on the query side, a 3-layer projector, the momentum rising
  from 0.99 to 1 along a cosine, and the symmetrised loss ctr(q1, k2) + ctr(q2, k1).

What prevents collapse: negatives (the queue or the batch); the momentum encoder keeps the keys
consistent across steps. Keys are never trained by gradient: the key encoder is a frozen copy
moved by ``after_step``.

Letters used in shapes: B batch size, W number of processes, D embedding width, K queue length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.losses import info_nce
from contrastkit.methods.base import Method
from contrastkit.methods.checks import int_at_least, positive, positive_ints, probability
from contrastkit.methods.views import predict_and_target, unpack_pair
from contrastkit.models.heads import mlp_head
from contrastkit.models.momentum import EMASchedule, frozen_copy


class MoCo(Method):
    """MoCo v2: momentum key encoder and a queue of negatives.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        queue_size: K, the number of past keys kept as negatives. It must be a multiple of the
            keys added per step (batch size x processes, x2 when ``symmetric``) and at most
            ``num_samples``.
        momentum: m of the key encoder's EMA (constant, as in the paper).
        temperature: InfoNCE temperature.
        hidden_dim: width of the head's hidden layer; default the backbone's ``feature_dim``
            (2048 for ResNet-50, as in the paper).
        out_dim: width of the keys and queries.
        symmetric: also compute ctr(x2 -> x1) and enqueue both views' keys (an option of the
            MoCo CIFAR demo; the paper's loss is asymmetric).
        num_samples: the number of training samples, filled in from the data by the trainer
            (``options_from_data``); the queue may not be longer.

    Raises:
        ValueError: a non-positive size or temperature, a momentum outside [0, 1], or a queue
            longer than the dataset.
    """

    view_recipe = "pair"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.2,
        hidden_dim: int | None = None,
        out_dim: int = 128,
        symmetric: bool = False,
        num_samples: int | None = None,
    ) -> None:
        super().__init__(backbone)
        positive_ints(queue_size=queue_size, out_dim=out_dim)
        probability(momentum=momentum)
        positive(temperature=temperature)
        if num_samples is not None and queue_size > num_samples:
            raise ValueError(
                f"queue_size {queue_size} is larger than the {num_samples} training samples: the "
                "queue would hold stale keys of the very images it is contrasted with; pass a "
                "smaller queue_size (a multiple of batch size x processes), e.g. "
                "--set queue_size=1024 (the built-in recipes of toy, digits and shapes fit)"
            )
        feature_dim = backbone.feature_dim
        self.queue_size = int(queue_size)
        self.momentum = float(momentum)
        self.ema = EMASchedule(self.momentum, self.momentum)  # constant, as in the paper
        self.temperature = float(temperature)
        self.symmetric = bool(symmetric)
        # fc-ReLU-fc without BatchNorm, as in MoCo v2
        self.projector = mlp_head(feature_dim, hidden_dim or feature_dim, out_dim, batch_norm=False)
        self.key_backbone = frozen_copy(backbone)
        self.key_projector = frozen_copy(self.projector)
        # random unit vectors until real keys replace them, as in the paper's code
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, out_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @classmethod
    def options_from_data(cls, dataset) -> dict:
        """Return ``num_samples`` so the constructor can check the queue against the data."""
        return {"num_samples": len(dataset)}

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a batch whose keys (over every process) do not divide the queue evenly."""
        keys_per_step = batch_size * distributed.world_size() * (2 if self.symmetric else 1)
        if self.queue_size % keys_per_step:
            raise ValueError(_queue_error(self.queue_size, batch_size, self.symmetric))

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Contrast queries of one view with keys of the other and the queue.

        Args:
            views: [x1, x2], each (B, ...).

        Returns:
            ``loss``, ``embedding`` (the detached queries of x1, (B, D)) and ``state/keys``
            (P*W*B, D): the keys of every process, which ``after_step`` enqueues (P = 2 when
            ``symmetric``, else 1).
        """
        x1, x2 = unpack_pair(views, "moco")
        self.check_batch_size(x1.shape[0])
        pairs = [(x1, x2), (x2, x1)] if self.symmetric else [(x1, x2)]
        queue = self.queue.clone().detach()  # (K, D); enqueued by after_step, after backward
        losses, keys, first_query = [], [], None
        for xq, xk in pairs:
            q = F.normalize(self.projector(self.backbone(xq)), dim=1)  # (B, D)
            with torch.no_grad():
                k = F.normalize(self.key_projector(self.key_backbone(xk)), dim=1)  # (B, D)
            # logits [q.k, q.queue] / tau: other keys of the batch are not negatives (paper)
            losses.append(info_nce(q, k, queue, temperature=self.temperature))
            keys.append(distributed.gather(k))  # (W*B, D)
            first_query = q if first_query is None else first_query
        loss = torch.stack(losses).mean()
        return {"loss": loss, "embedding": first_query.detach(), "state/keys": torch.cat(keys)}

    def after_step(self, step: int, total_steps: int, outputs: dict[str, Tensor]) -> None:
        """Move the key encoder toward the query encoder and enqueue ``outputs["state/keys"]``."""
        keys = [(self.key_backbone, self.backbone), (self.key_projector, self.projector)]
        self.ema.update_(keys, step, total_steps)
        self._enqueue(outputs["state/keys"])

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        """Write keys (n, D) over the oldest entries, oldest first, wrapping at the end."""
        n = keys.shape[0]
        ptr = int(self.queue_ptr)
        index = torch.arange(ptr, ptr + n, device=self.queue.device) % self.queue_size
        self.queue[index] = keys.to(self.queue.dtype)
        self.queue_ptr.fill_((ptr + n) % self.queue_size)


class MoCoV3(Method):
    """MoCo v3: momentum encoder, predictor, in-batch negatives, cosine momentum schedule.

    Args:
        backbone: the encoder f, with ``.feature_dim``.
        momentum: the momentum at step 0; it rises to ``final_momentum`` along a cosine.
        final_momentum: the momentum at the last step.
        temperature: of the contrastive loss; 1.0 is the official code's default, used for
            ResNets; the paper's ViT recipe uses 0.2.
        hidden_dim: width of the hidden layers of projector and predictor.
        out_dim: width of the projection.
        projector_layers: linear layers in the projector (3 in the paper; its ResNet code uses 2).

    Raises:
        ValueError: a non-positive size or temperature, or a momentum outside [0, 1].
    """

    view_recipe = "pair"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        momentum: float = 0.99,
        final_momentum: float = 1.0,
        temperature: float = 1.0,
        hidden_dim: int = 4096,
        out_dim: int = 256,
        projector_layers: int = 3,
    ) -> None:
        super().__init__(backbone)
        probability(momentum=momentum, final_momentum=final_momentum)
        positive(temperature=temperature)
        positive_ints(hidden_dim=hidden_dim, out_dim=out_dim)
        int_at_least(2, projector_layers=projector_layers)
        self.base_momentum, self.final_momentum = float(momentum), float(final_momentum)
        self.ema = EMASchedule(self.base_momentum, self.final_momentum)
        self.temperature = float(temperature)
        # BatchNorm after every layer of the projector, the last one included (paper, Sec. 4)
        self.projector = mlp_head(
            backbone.feature_dim,
            hidden_dim,
            out_dim,
            num_layers=projector_layers,
            last_batch_norm=True,
            last_bias=False,
        )
        self.predictor = mlp_head(out_dim, hidden_dim, out_dim, last_bias=False)
        self.key_backbone = frozen_copy(backbone)
        self.key_projector = frozen_copy(self.projector)
        # optimizer steps taken; saved with the checkpoint so a resumed run logs the same values
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Return ``2 * tau * (ctr(q1, k2) + ctr(q2, k1))`` as in the official code.

        Args:
            views: [x1, x2], each (B, ...).

        Returns:
            ``loss``, ``momentum`` (of the next EMA update), ``embedding`` (detached (B, D)
            projection of x1).
        """
        online, keys = (self.backbone, self.projector), (self.key_backbone, self.key_projector)
        z1, (q1, q2), (k1, k2) = predict_and_target(views, "mocov3", online, self.predictor, keys)
        tau = self.temperature
        # info_nce normalises; with no extra negatives the other keys of the (global) batch are
        # the negatives. The factor 2 * tau keeps gradients comparable across temperatures.
        loss = 2 * tau * (info_nce(q1, k2, temperature=tau) + info_nce(q2, k1, temperature=tau))
        return {
            "loss": loss,
            "momentum": torch.tensor(self.ema.at(int(self.steps_done), self.total_steps)),
            "embedding": F.normalize(z1.detach(), dim=1),
        }

    def after_step(self, step: int, total_steps: int, outputs: dict[str, Tensor]) -> None:
        """Move the momentum encoder with the cosine-scheduled momentum of this step."""
        keys = [(self.key_backbone, self.backbone), (self.key_projector, self.projector)]
        self.ema.update_(keys, step, total_steps)
        self.steps_done.fill_(step + 1)


def _queue_error(queue_size: int, batch_size: int, symmetric: bool) -> str:
    world = distributed.world_size()
    per_step = batch_size * world * (2 if symmetric else 1)
    fit = max(per_step, queue_size // per_step * per_step)
    what = f"batch size {batch_size} x {world} process(es)" + (" x 2 views" if symmetric else "")
    if per_step > queue_size:
        problem = f"is smaller than the {per_step} keys added per step ({what})"
    else:
        problem = f"is not a multiple of the {per_step} keys added per step ({what})"
    return (
        f"queue_size {queue_size} {problem}; pass --set queue_size={fit} (a multiple "
        f"of {per_step}) or change --batch-size"
    )


__all__ = ["MoCo", "MoCoV3"]

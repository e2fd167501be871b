"""The contract every method follows.

A method is an ``nn.Module`` made of a backbone f (input -> representation h), heads (h -> z) and
a loss. It has no optimizer and no loop: the trainer (``contrastkit.training.trainer``) drives it.

Letters used in shapes: B batch size, V number of views, D embedding width.
"""

from __future__ import annotations

from torch import Tensor, nn


class Method(nn.Module):
    """Base class of every self-supervised method.

    Subclasses set ``view_recipe`` (what the data pipeline must produce, see
    ``contrastkit.transforms.VIEW_RECIPES``) and implement ``training_step``.

    Attributes:
        backbone: the encoder f; ``backbone.feature_dim`` is the width of h.
        view_recipe: "pair" (two views), "asymmetric_pair" (BYOL's two different recipes),
            "multicrop" (2 global + N local crops) or "image_text" (an image view and token ids).
        default_clip_grad: the gradient-norm clipping of the method's paper, used when the
            user sets none (None: no clipping).
    """

    view_recipe: str = "pair"
    default_clip_grad: float | None = None

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Compute the loss on one batch of views.

        Args:
            views: V tensors, each (B, ...) — the same B samples seen through different views.

        Returns:
            ``{"loss": scalar, <named scalar terms>...}``; it may also hold ``"embedding"``: a
            detached (B, D) tensor that the trainer's collapse monitor inspects.
        """
        raise NotImplementedError

    def setup(self, total_steps: int, steps_per_epoch: int) -> None:
        """Learn the length of training before the first step (schedules need it)."""

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a per-process batch size the method cannot train with, before any output.

        Raises:
            ValueError: naming the setting that does not fit (e.g. MoCo's queue size).
        """

    def before_optimizer_step(self, step: int) -> None:
        """Adjust gradients after backward, before the optimizer (e.g. DINO's frozen last layer)."""

    def after_step(self, step: int, total_steps: int) -> None:
        """Update what moves outside gradients: EMA teachers, queues, centers, clamps."""

    def parameter_groups(self) -> list[dict]:
        """Return optimizer parameter groups; a group may set ``"fixed_lr": True``.

        The trainer further splits each group into weight-decayed and not-decayed parameters
        (biases and normalisation parameters, i.e. tensors with ndim <= 1, are not decayed).
        """
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def embed(self, x: Tensor) -> Tensor:
        """Return the representation h = f(x) (never the projection z): (B, ...) -> (B, F)."""
        return self.backbone(x)

    @classmethod
    def options_from_data(cls, dataset) -> dict:
        """Return constructor options derived from the training data (e.g. CLIP's vocabulary).

        They are stored in the run's config so that a reloaded run rebuilds the same module.
        """
        return {}

"""The contract every method follows.

A method is an ``nn.Module`` made of a backbone f (input -> representation h), heads (h -> z) and
a loss. It has no optimizer and no loop: the trainer (``contrastkit.training.trainer``) drives it.

Letters used in shapes: B batch size, V number of views, D embedding width.
"""

from __future__ import annotations

from torch import Tensor, nn

from contrastkit.models.text import Tokenizer

STATE_PREFIX = "state/"  # outputs a method hands from training_step to its own after_step


class Method(nn.Module):
    """Base class of every self-supervised method.

    Subclasses set ``view_recipe`` (what the data pipeline must produce, see
    ``contrastkit.transforms.VIEW_RECIPES``) and implement ``training_step``. Everything else the
    trainer and the tools may ask of a method is declared here with a default.

    State that moves outside gradients (a queue, a center) is computed in ``training_step`` and
    returned under a ``"state/..."`` key; the trainer hands that same dict to ``after_step``,
    which alone changes the method. So an extra ``training_step`` (a validation pass) changes
    nothing.

    Attributes:
        backbone: the encoder f; ``backbone.feature_dim`` is the width of h.
        view_recipe: "pair" (two views), "asymmetric_pair" (BYOL's two different recipes),
            "multicrop" (2 global + N local crops) or "image_text" (an image view and token ids).
        default_clip_grad: the gradient-norm clipping of the method's paper, used when the
            user sets none (None: no clipping).
        supports_gradient_cache: True when the method implements ``embed_views`` and
            ``loss_from_embeddings`` (``contrastkit.training.gradcache``, ``--chunk-size``).
        tokenizer: the tokenizer of a method that reads text (CLIP), else None.
        needs_labels: True for a method trained with the labels (the supervised yardstick):
            its ``views`` end with the batch's classes y (B,) long.
        total_steps: the length of training in optimizer steps, learnt in ``setup`` (1 before).
    """

    view_recipe: str = "pair"
    default_clip_grad: float | None = None
    supports_gradient_cache: bool = False
    tokenizer: Tokenizer | None = None
    needs_labels: bool = False
    total_steps: int = 1

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Compute the loss on one batch of views.

        Args:
            views: V tensors, each (B, ...) — the same B samples seen through different views.

        Returns:
            ``{"loss": scalar, <named scalar terms>...}``; it may also hold ``"embedding"``: a
            detached (B, D) tensor that the trainer's collapse monitor inspects, and
            ``"state/<name>"`` entries for ``after_step`` (never logged).
        """
        raise NotImplementedError

    def embed_views(self, views: list[Tensor]) -> list[Tensor]:
        """Embed V views (B, ...) into E embeddings (B, D): the first half of ``training_step``.

        Row i of every embedding may depend only on row i of the views, so that gradient caching
        can embed the batch in chunks. Implemented with ``loss_from_embeddings`` and
        ``supports_gradient_cache = True``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not split its training_step")

    def loss_from_embeddings(self, zs: list[Tensor]) -> dict[str, Tensor]:
        """Return ``training_step``'s dict from ``embed_views``' embeddings (the second half)."""
        raise NotImplementedError(f"{type(self).__name__} does not split its training_step")

    def num_negatives(self, batch_size: int) -> int | None:
        """Return K, the negatives of each anchor in a batch of ``batch_size`` (None: no bound).

        The trainer reports the InfoNCE bound log(K + 1) when it is not None.
        """
        return None

    @property
    def teacher_backbone(self) -> nn.Module | None:
        """The backbone whose attention maps are drawn (DINO's EMA teacher), or None.

        A method that has a teacher registers it as the submodule ``teacher_backbone``.
        """
        return self._modules.get("teacher_backbone")

    def setup(self, total_steps: int, steps_per_epoch: int) -> None:
        """Learn the length of training before the first step (schedules need it).

        An override that converts epochs to steps calls ``super().setup(...)`` first.
        """
        self.total_steps = max(int(total_steps), 1)

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a per-process batch size the method cannot train with, before any output.

        Raises:
            ValueError: naming the setting that does not fit (e.g. MoCo's queue size).
        """

    def before_optimizer_step(self, step: int) -> None:
        """Adjust gradients after backward, before the optimizer (e.g. DINO's frozen last layer)."""

    def after_step(self, step: int, total_steps: int, outputs: dict[str, Tensor]) -> None:
        """Update what moves outside gradients: EMA teachers, queues, centers, clamps.

        Args:
            step: the optimizer step just taken, counted from 0.
            total_steps: the length of training in steps.
            outputs: the dict ``training_step`` returned for this step (its ``"state/..."``
                entries carry what the update needs), before any averaging over processes.
        """

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

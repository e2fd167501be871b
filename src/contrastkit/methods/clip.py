"""CLIP (Radford et al. 2021, https://arxiv.org/abs/2103.00020): image-text contrastive learning.

A batch of B (image, caption) pairs goes through two towers: the image tower (any contrastkit
backbone) and the text tower (``contrastkit.models.text.TextEncoder``). Linear projections map both
to a
shared width E, both are L2-normalised, and the symmetric InfoNCE loss
(``contrastkit.losses.clip_loss``) is applied to the B x B similarity matrix, whose diagonal holds
the matching pairs. The temperature is learned: ``log_logit_scale`` starts at log(1/0.07) and the
scale is clamped to at most 100 after every step, as in the paper.

Letters used in shapes: B batch size, L context length, F image feature width, W text width,
E shared embedding width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.data.captions import caption_choices
from contrastkit.losses import clip_loss
from contrastkit.methods.base import Method
from contrastkit.methods.checks import positive, positive_ints
from contrastkit.models.text import TextEncoder, Tokenizer


class CLIP(Method):
    """Image tower + text tower + projections to a shared space + learned temperature.

    Defaults follow the paper's text tower (width 512, 12 layers, 8 heads, E = 512); for tiny
    data pass smaller ``text_width`` / ``text_depth`` / ``embed_dim`` (recipe ``clip-shapes``).

    Args:
        backbone: the image encoder f, with ``.feature_dim``.
        vocab: the tokenizer's words (``Tokenizer.words``), normally from ``options_from_data``.
        context_length: L, ids per caption (``<bos>`` and ``<eos>`` included).
        embed_dim: E, the width of the shared image-text space.
        text_width: W, the text Transformer's width.
        text_depth: number of text Transformer layers.
        text_heads: attention heads of the text Transformer.
        init_temperature: initial temperature; ``log_logit_scale`` starts at log(1 / it).
        max_logit_scale: the clamp applied after each step (the scale never exceeds it).
        learn_temperature: learn the logit scale (True in the paper) or keep it fixed.
    """

    view_recipe = "image_text"
    supports_gradient_cache = True

    def __init__(
        self,
        backbone: nn.Module,
        *,
        vocab: Sequence[str] | None = None,
        context_length: int = 77,
        embed_dim: int = 512,
        text_width: int = 512,
        text_depth: int = 12,
        text_heads: int = 8,
        init_temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        learn_temperature: bool = True,
    ) -> None:
        super().__init__(backbone)
        if not vocab:
            raise ValueError(
                "vocab is empty; CLIP needs the training captions' words "
                "(use CLIP.options_from_data(dataset) or Tokenizer.build(captions).words)"
            )
        positive_ints(embed_dim=embed_dim)
        positive(init_temperature=init_temperature)
        if not 1 / init_temperature <= max_logit_scale:
            scale = 1 / init_temperature
            raise ValueError(
                f"init_temperature {init_temperature} gives a logit scale {scale:.4g} above "
                f"max_logit_scale {max_logit_scale}"
            )
        self.tokenizer = Tokenizer(vocab, context_length=context_length)
        self.text = TextEncoder(
            self.tokenizer.vocab_size,
            self.tokenizer.context_length,
            width=text_width,
            depth=text_depth,
            heads=text_heads,
        )
        self.image_projection = nn.Linear(backbone.feature_dim, embed_dim, bias=False)
        self.text_projection = nn.Linear(text_width, embed_dim, bias=False)
        self.log_logit_scale = nn.Parameter(
            torch.tensor(math.log(1 / init_temperature)), requires_grad=learn_temperature
        )
        self.max_logit_scale = float(max_logit_scale)
        self.embed_dim = embed_dim

    @property
    def logit_scale(self) -> Tensor:
        """The current scale exp(``log_logit_scale``) = 1 / temperature (0-dim)."""
        return self.log_logit_scale.exp()

    def image_features(self, images: Tensor) -> Tensor:
        """Project and normalise images: (B, C, H, W) -> (B, E), unit norm."""
        return F.normalize(self.image_projection(self.backbone(images)), dim=-1)

    def text_features(self, ids: Tensor) -> Tensor:
        """Project and normalise token ids: (B, L) -> (B, E), unit norm."""
        return F.normalize(self.text_projection(self.text(ids)), dim=-1)

    def training_step(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Compute the symmetric CLIP loss on B pairs.

        Args:
            views: ``[images (B, C, H, W), token_ids (B, L)]``; pair i is (images[i], ids[i]).

        Returns:
            ``{"loss", "temperature" (1/scale), "logit_scale" (the scale), "embedding" (B, E)}``.
        """
        return self.loss_from_embeddings(self.embed_views(views))

    def embed_views(self, views: list[Tensor]) -> list[Tensor]:
        """Embed ``[images (B, C, H, W), token_ids (B, L)]`` -> ``[image (B, E), text (B, E)]``.

        The first half of ``training_step``; with ``loss_from_embeddings`` it lets gradient
        caching (``contrastkit.training.gradcache``, ``--chunk-size``) embed a large batch in
        chunks.
        """
        if len(views) != 2:
            raise ValueError(
                f"views must be [images, token_ids] for CLIP, got {len(views)} tensors"
            )
        images, ids = views
        if ids.ndim != 2 or images.shape[0] != ids.shape[0]:
            raise ValueError(
                f"views must be images (B, ...) and token ids (B, L) with the same B, got "
                f"{tuple(images.shape)} and {tuple(ids.shape)}"
            )
        return [self.image_features(images), self.text_features(ids.long())]  # 2 x (B, E)

    def loss_from_embeddings(self, zs: list[Tensor]) -> dict[str, Tensor]:
        """Return ``training_step``'s dict for ``[image (B, E), text (B, E)]`` (unit rows)."""
        image, text = zs
        scale = self.logit_scale
        loss = clip_loss(image, text, scale)
        return {
            "loss": loss,
            "temperature": 1.0 / scale.detach(),
            "logit_scale": scale.detach(),
            "embedding": image.detach(),
        }

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int, outputs: dict[str, Tensor]) -> None:
        """Clamp the logit scale to at most ``max_logit_scale`` (the paper's 100)."""
        self.log_logit_scale.clamp_(max=math.log(self.max_logit_scale))

    @torch.no_grad()
    def encode_image(self, images: Tensor) -> Tensor:
        """Embed images in the shared space: (B, C, H, W) -> (B, E), unit norm."""
        device = self.log_logit_scale.device
        return self.image_features(images.to(device))

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """Embed captions in the shared space: B strings -> (B, E), unit norm.

        Words outside the training vocabulary become ``<unk>``.
        """
        if isinstance(texts, str):
            texts = [texts]
        ids = self.tokenizer(list(texts)).to(self.log_logit_scale.device)  # (B, L)
        return self.text_features(ids)

    @classmethod
    def options_from_data(cls, dataset) -> dict:
        """Build the vocabulary from every phrasing of ``dataset``'s captions.

        The words and the context length go into the run's config, so a reloaded run rebuilds
        the same tokenizer.

        Raises:
            ValueError: the dataset has no captions.
        """
        corpus = [c for phrasings in caption_choices(dataset) for c in phrasings]
        tokenizer = Tokenizer.build(corpus)
        return {"vocab": tokenizer.words, "context_length": tokenizer.context_length}


__all__ = ["CLIP"]

"""A tiny CLIP whose embeddings live in 2 dimensions, trained step by step (the browser demo).

It is built from ``contrastkit.methods.CLIP`` (the same towers, projections, learned and clamped
temperature, and ``clip_loss``) with E = 2: a small MLP image tower on 16x16 ``shapes`` scenes
and a one-layer text Transformer over the prompts "a photo of a {label}".

Embeddings are L2-normalised, as in CLIP, so every image and every prompt is a point on the
unit circle and similarity is the cosine of the angle between two points. Zero-shot
classification gives each image the prompt nearest to it on the circle. This animates well:
prompts spread around the circle, and each image slides along it toward its own prompt and away
from the others. Images of one label converge to nearby angles; a display may draw them at
slightly different radii to keep them apart.

Two changes from full-size CLIP make 2 dimensions train reliably (measured in
tests/test_clip2d.py; without them most seeds stall at loss = log C):

- Before normalisation, the projected outputs are centred over the set: image embeddings over
  the N images, prompt embeddings over the C prompts. The prompts share every word but one, so
  they start at almost the same angle, and the quickest way down for the loss is then the
  degenerate state where all logits are equal (loss = log C), which a 2-D model does not leave.
  Subtracting the mean removes the shared offset, as DINO's centering does for its collapse.
- The temperature starts at 1 instead of 0.07: at a high logit scale the variance of the
  initial, random similarities dominates the loss and pushes every image to the same angle. It
  is learned (and clamped at scale 100) as in CLIP and falls as training proceeds.

One ``step`` is one optimizer step over every image: the images are dealt into groups that hold
one image of each label (a batch of C distinct pairs, so each row of the C x C similarity matrix
has exactly one match), the CLIP loss is averaged over the groups, and the model is updated.
``state`` reports the loss on a fixed grouping, so it changes only when the model does.

Next to the N training images, the model keeps M held-out images from the test split of
``shapes`` (scenes the training split never holds); it never trains on them, and ``state``
classifies them too, so zero-shot accuracy is also measured on images the model has not seen.
``embed_prompt`` places any typed prompt in the plane: its words go through the same tokenizer
(words outside the C prompts' vocabulary become ``<unk>``) and text tower, centred by the mean of
the C prompts.

Letters used in shapes: N images, M held-out images, C labels, G groups (images per label),
E = 2.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from contrastkit.data.shapes import SHAPES, build_shapes
from contrastkit.losses import clip_loss
from contrastkit.methods.clip import CLIP
from contrastkit.models.backbones import build_backbone
from contrastkit.models.text import Tokenizer, split_words

DEFAULT_LABELS: tuple[str, ...] = ("circle", "square", "triangle")
PROMPT = "a photo of a {}"
IMAGE_SIZE = 16  # the smallest shapes scenes whose outlines stay recognisable
_INIT_LOCK = threading.Lock()  # parameter init uses torch's global RNG


class Clip2D:
    """A 2-D CLIP on a few labelled shapes images, for step-by-step animation.

    Args:
        labels: C shape names among ``contrastkit.data.shapes.SHAPES`` (default 3); the prompt
            of each is "a photo of a {label}".
        images_per_label: images of each label (N = C * images_per_label).
        seed: fixes the images, the initial scatter and the order of training.
        lr: Adam learning rate.
        hidden: width of the two layers of the image MLP.
        init_temperature: the starting temperature (learned afterwards; see the module notes).
        heldout_per_label: held-out test images of each label (M = C * heldout_per_label).

    Raises:
        ValueError: fewer than 2 labels, an unknown or repeated label, images_per_label < 1 or
            heldout_per_label < 0.
    """

    def __init__(
        self,
        labels: Sequence[str] = DEFAULT_LABELS,
        images_per_label: int = 12,
        seed: int = 0,
        lr: float = 0.01,
        hidden: int = 32,
        init_temperature: float = 1.0,
        heldout_per_label: int = 6,
    ) -> None:
        labels = [str(label) for label in labels]
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(f"labels must hold at least 2 distinct shape names, got {labels}")
        unknown = [label for label in labels if label not in SHAPES]
        if unknown:
            raise ValueError(f"labels {unknown} are not shapes; expected names from {SHAPES}")
        if images_per_label < 1:
            raise ValueError(f"images_per_label must be >= 1, got {images_per_label}")
        if heldout_per_label < 0:
            raise ValueError(f"heldout_per_label must be >= 0, got {heldout_per_label}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.labels = labels
        self.prompts = [PROMPT.format(label) for label in labels]
        self.seed = int(seed)
        self.lr = float(lr)
        self.hidden = int(hidden)
        self.init_temperature = float(init_temperature)
        self.images, self.image_labels, self.image_colors = _pick_images(
            labels, images_per_label, self.seed
        )
        self.heldout_images, self.heldout_labels, self.heldout_colors = _pick_images(
            labels, heldout_per_label, self.seed, train=False
        )
        self.tokenizer = Tokenizer.build(self.prompts)
        self.text_ids = self.tokenizer(self.prompts)  # (C, L)
        # fixed grouping for the reported loss: group g holds the g-th image of every label
        order = torch.argsort(self.image_labels * len(self.image_labels) + torch.arange(len(self)))
        self._eval_groups = order.reshape(len(labels), images_per_label).T  # (G, C)
        self._resets = 0
        self.reset(new_scatter=False)

    def __len__(self) -> int:
        return len(self.image_labels)

    def reset(self, new_scatter: bool = True) -> None:
        """Forget training and start from a fresh random initialisation.

        Args:
            new_scatter: draw a new initial scatter (the k-th reset of a model is reproducible);
                False restarts from the very first one.
        """
        self._resets = self._resets + 1 if new_scatter else 0
        init_seed = self.seed * 1_000_003 + self._resets
        with _INIT_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            # the last layer stays linear so the features cannot all die at zero
            backbone = build_backbone(
                "mlp",
                input_dim=self.images[0].numel(),
                hidden_dims=(self.hidden, self.hidden),
                final_relu=False,
            )
            self.model = CLIP(
                backbone,
                vocab=self.tokenizer.words,
                context_length=self.tokenizer.context_length,
                embed_dim=2,
                text_width=16,
                text_depth=1,
                text_heads=2,
                init_temperature=self.init_temperature,
            )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.generator = torch.Generator().manual_seed(init_seed)
        self.epoch = 0

    def _groups(self) -> torch.Tensor:
        """Deal the images into groups of one image per label, at random: (G, C) indices."""
        C = len(self.labels)
        per_label = self._eval_groups.T  # (C, G)
        shuffled = torch.stack(
            [row[torch.randperm(row.numel(), generator=self.generator)] for row in per_label]
        )
        return shuffled.T.reshape(-1, C)

    def _embed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the centred, normalised image (N, 2) and prompt (C, 2) embeddings."""
        image, text = self._project_images(self.images), self._project_texts(self.text_ids)
        image, text = image - image.mean(dim=0), text - text.mean(dim=0)
        return F.normalize(image, dim=1), F.normalize(text, dim=1)

    def _project_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3*16*16) pixels -> (B, 2) projected image embeddings, before centring."""
        return self.model.image_projection(self.model.backbone(images))

    def _project_texts(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids -> (B, 2) projected text embeddings, before centring."""
        return self.model.text_projection(self.model.text(ids))

    @torch.no_grad()
    def _embed_heldout(self) -> torch.Tensor:
        """Return the held-out images (M, 2), centred by the training images' mean, normalised."""
        if len(self.heldout_labels) == 0:
            return torch.zeros(0, 2)
        mean = self._project_images(self.images).mean(dim=0)  # (2,)
        return F.normalize(self._project_images(self.heldout_images) - mean, dim=1)

    @torch.no_grad()
    def embed_prompt(self, text: str) -> dict:
        """Place a typed prompt in the plane, as the C class prompts are placed.

        Args:
            text: any caption with at least one word of letters or digits.

        Returns:
            ``{"text", "xy": [x, y], "unknown_words": [...], "prompt_similarity" (C floats),
            "nearest_prompt": int, "image_similarity" (N floats)}``: cosines to the class
            prompts and to the training images.

        Raises:
            ValueError: the text has no word.
        """
        self.model.eval()
        ids = self.tokenizer(text)[None]  # (1, L)
        mean = self._project_texts(self.text_ids).mean(dim=0)  # (2,)
        xy = F.normalize(self._project_texts(ids) - mean, dim=1)  # (1, 2)
        image, prompts = self._embed()  # (N, 2), (C, 2)
        to_prompts = (xy @ prompts.T)[0]  # (C,)
        unknown = [w for w in split_words(text) if w not in self.tokenizer.vocab]
        return {
            "text": text,
            "xy": xy[0].tolist(),
            "unknown_words": unknown,
            "prompt_similarity": to_prompts.tolist(),
            "nearest_prompt": int(to_prompts.argmax()),
            "image_similarity": (xy @ image.T)[0].tolist(),
        }

    def _loss(self, groups: torch.Tensor) -> torch.Tensor:
        image, text = self._embed()  # (N, 2), (C, 2)
        scale = self.model.logit_scale
        # every group is a batch of C distinct pairs: image of label c <-> prompt c
        losses = [clip_loss(image[g], text[self.image_labels[g]], scale) for g in groups]
        return torch.stack(losses).mean()

    def step(self, n: int = 1) -> dict:
        """Run ``n`` training steps (each over all images) and return the new ``state``."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        self.model.train()
        for _ in range(n):
            loss = self._loss(self._groups())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            # the hook's outputs are what training_step would have returned; CLIP's hook only
            # clamps the logit scale and reads none of it
            self.model.after_step(self.epoch, 0, {"loss": loss.detach()})
            self.epoch += 1
        return self.state()

    @torch.no_grad()
    def state(self) -> dict:
        """Return the current embeddings and scores as plain Python values (JSON-ready).

        Returns:
            ``{"epoch", "loss", "accuracy", "chance", "temperature", "labels", "prompts",
            "image_xy" (N x [x, y]), "text_xy" (C x [x, y]), "image_labels" (N ints),
            "image_colors" (N colour names), "predictions" (N ints), "heldout": {"count": M,
            "accuracy" (None when M = 0), "image_xy", "image_labels", "image_colors",
            "predictions"}}``; points lie on the unit circle, ``predictions`` are the nearest
            prompts and ``temperature`` is the learned one, 1 / logit scale.
        """
        self.model.eval()
        image, text = self._embed()  # (N, 2), (C, 2)
        predictions = (image @ text.T).argmax(dim=1)  # (N,)
        accuracy = (predictions == self.image_labels).float().mean().item()
        heldout = self._embed_heldout()  # (M, 2)
        heldout_predictions = (heldout @ text.T).argmax(dim=1)  # (M,)
        heldout_accuracy = (
            (heldout_predictions == self.heldout_labels).float().mean().item()
            if len(heldout)
            else None
        )
        return {
            "epoch": self.epoch,
            "loss": float(self._loss(self._eval_groups)),
            "accuracy": accuracy,
            "chance": 1.0 / len(self.labels),
            "temperature": float(1.0 / self.model.logit_scale),
            "labels": list(self.labels),
            "prompts": list(self.prompts),
            "image_xy": image.tolist(),
            "text_xy": text.tolist(),
            "image_labels": self.image_labels.tolist(),
            "image_colors": list(self.image_colors),
            "predictions": predictions.tolist(),
            "heldout": {
                "count": len(heldout),
                "accuracy": heldout_accuracy,
                "image_xy": heldout.tolist(),
                "image_labels": self.heldout_labels.tolist(),
                "image_colors": list(self.heldout_colors),
                "predictions": heldout_predictions.tolist(),
            },
        }


def _pick_images(labels: list[str], per_label: int, seed: int, train: bool = True) -> tuple:
    """Take the first ``per_label`` scenes of each label: images (N, 3*16*16), labels, colours.

    ``train`` picks the split of ``shapes``; its two splits never share a scene.
    """
    need = len(labels) * per_label
    ds = build_shapes(train=train, seed=seed, size=IMAGE_SIZE, n=8 * need + 64, holdout=())
    index = []
    for label in labels:
        found = (ds.labels == ds.class_names.index(label)).nonzero().flatten()[:per_label]
        if len(found) < per_label:  # pragma: no cover (8x oversampling makes this vanishingly rare)
            raise ValueError(f"could not draw {per_label} images of {label!r}; lower it")
        index += found.tolist()
    index = torch.tensor(index, dtype=torch.long)
    images = ds.images[index].float().div(255.0).flatten(1)  # (N, 3 * 16 * 16)
    names = [ds.class_names[int(c)] for c in ds.labels[index]]
    image_labels = torch.tensor([labels.index(n) for n in names], dtype=torch.long)
    colors = [ds.color_names[int(c)] for c in ds.colors[index]]
    return images, image_labels, colors


__all__ = ["DEFAULT_LABELS", "PROMPT", "Clip2D"]

"""Captions for CLIP training: several phrasings per image, and the dataset that carries them.

A dataset with ``captions`` has one caption per image. For ``shapes`` (any dataset exposing
``colors``, ``color_names``, ``labels`` and ``class_names``) every image gets several phrasings
built from ``SHAPES_TEMPLATES`` ("a red star", "a photo of a small red star", "a picture of a red
star", "a photo of a star", ...); the view function picks one at random each time the image
is seen, so the text tower learns the words, not one sentence.

``CaptionedImages`` wraps such a dataset for training: ``ds[i] -> ((image, ids), y)`` where
``ids`` (K, L) holds the token ids of the K phrasings of caption i. The trainer uses it for
methods whose ``view_recipe`` is ``"image_text"``; the recipe's view function
(``contrastkit.transforms.image_text``) turns ``(image, ids)`` into ``[image view, ids[k]]``.

Letters used in shapes: K phrasings per caption, L context length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from contrastkit.models.text import Tokenizer

# {a} is "a" or "an" for the word after it; {size} is small / medium-sized / large
SHAPES_TEMPLATES: tuple[str, ...] = (
    "{a} {color} {shape}",
    "a photo of {a} {color} {shape}",
    "a picture of {a} {color} {shape}",
    "a photo of a {size} {color} {shape}",
    "an image of {a} {color} {shape} on a cluttered background",
    "{a} {color} {shape} shape",
    "a drawing of {a} {size} {color} {shape}",
    # captions that leave the colour out are true of every colour: they tie the shape words to
    # the outline alone, as real captions that omit an attribute do
    "a photo of a {shape}",
    "a {size} {shape}",
    "a picture of a {shape} on a cluttered background",
)
# object radius (fraction of the side) below / above which a shape is called small / large
SIZE_WORDS: tuple[tuple[float, str], ...] = ((0.27, "small"), (0.33, "medium-sized"))
LARGE = "large"


def article(word: str) -> str:
    """Return "an" before a vowel, else "a"."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def size_word(scale: float) -> str:
    """Name an object's size from its radius as a fraction of the image side."""
    return next((word for limit, word in SIZE_WORDS if scale < limit), LARGE)


def shapes_caption(color: str, shape: str, template: str, scale: float = 0.3) -> str:
    """Fill one template: ``shapes_caption("red", "star", "a photo of {a} {color} {shape}")``."""
    return template.format(a=article(color), color=color, shape=shape, size=size_word(scale))


def has_attributes(dataset) -> bool:
    """Return True when ``dataset`` names each sample's colour and shape (like ``shapes``)."""
    names = ("colors", "color_names", "labels", "class_names")
    return all(getattr(dataset, name, None) is not None for name in names)


def caption_choices(dataset, templates: Sequence[str] = SHAPES_TEMPLATES) -> list[list[str]]:
    """Return the phrasings of every sample's caption: N lists of K strings.

    Datasets with colours and classes get one phrasing per template; other captioned datasets
    (``pairs:CSV``) keep their single caption.

    Raises:
        ValueError: the dataset has no captions and no colour/class attributes.
    """
    if has_attributes(dataset):
        scales = getattr(dataset, "scales", None)
        out = []
        for i, (c, s) in enumerate(
            zip(dataset.colors.tolist(), dataset.labels.tolist(), strict=True)
        ):
            color, shape = dataset.color_names[c], dataset.class_names[s]
            scale = float(scales[i]) if scales is not None else 0.3
            out.append([shapes_caption(color, shape, t, scale) for t in templates])
        return out
    captions = getattr(dataset, "captions", None)
    if captions is None:
        name = getattr(dataset, "name", type(dataset).__name__)
        raise ValueError(
            f"dataset {name!r} has no captions; CLIP needs image-text pairs "
            "(--data shapes or --data pairs:CSV)"
        )
    return [[c] for c in captions]


class CaptionedImages(Dataset):
    """A captioned dataset whose samples carry the token ids of their caption phrasings.

    ``ds[i] -> ((image, ids (K, L) long), y)``; every other attribute (``kind``,
    ``input_shape``, ``labels``, ``captions``...) is the wrapped dataset's.

    Args:
        dataset: images with captions (see ``caption_choices``).
        tokenizer: the method's tokenizer (``CLIP.tokenizer``).
    """

    def __init__(self, dataset, tokenizer: Tokenizer) -> None:
        self.dataset = dataset
        choices = caption_choices(dataset)
        if len(choices) != len(dataset):
            raise ValueError(
                f"dataset has {len(dataset)} images but {len(choices)} captions; "
                "expected one caption per image"
            )
        # tokenised once (many samples share a caption): views then only pick a row
        cache: dict[str, Tensor] = {}
        for phrasings in choices:
            for c in phrasings:
                if c not in cache:
                    cache[c] = tokenizer.encode(c)
        self.token_ids = [torch.stack([cache[c] for c in p]) for p in choices]  # N x (K, L)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[tuple[Tensor, Tensor], int]:
        x, y = self.dataset[index]
        return (x, self.token_ids[index]), y

    def __getattr__(self, name: str):
        # only called for attributes not found on the wrapper: forward to the data
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def check_token_choices(ids: Tensor) -> None:
    """Raise ValueError unless ``ids`` is a (K, L) long tensor with K >= 1."""
    ok = isinstance(ids, Tensor) and ids.ndim == 2 and ids.shape[0] >= 1
    if not ok or ids.dtype != torch.long:
        got = f"{tuple(ids.shape)} {ids.dtype}" if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(f"caption ids must be a (K, L) long tensor, got {got}")


__all__ = [
    "SHAPES_TEMPLATES",
    "CaptionedImages",
    "caption_choices",
    "check_token_choices",
    "has_attributes",
    "shapes_caption",
    "size_word",
]

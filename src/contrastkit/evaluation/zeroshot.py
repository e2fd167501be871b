"""Zero-shot classification and image-text retrieval with a trained CLIP.

No classifier is trained: each label becomes a text prompt ("a photo of a {}"), several prompts
per label are embedded, normalised, averaged and normalised again (CLIP's prompt ensembling), and
every image is given the label whose prompt embedding is the most similar to its own.

The evaluation reports accuracy next to chance (1 / number of labels), a confusion matrix,
accuracy on samples whose (colour, shape) combination was seen in training and on combinations
never seen (the compositional split of ``shapes``), and image->text / text->image recall@k.

Letters used in shapes: N images, C labels, T templates, M distinct captions, E embedding width.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}", "a picture of a {}", "a {}")


def check_labels(labels: Sequence[str]) -> list[str]:
    """Return the labels stripped; raise ValueError when the list or any label is empty."""
    cleaned = [str(label).strip() for label in labels]
    if not cleaned:
        raise ValueError("labels is empty; expected at least 2 names such as 'circle,square'")
    if any(not label for label in cleaned):
        raise ValueError(f"labels contains an empty name: {list(labels)!r}")
    if len(set(cleaned)) != len(cleaned):
        raise ValueError(f"labels contains duplicates: {cleaned!r}")
    return cleaned


def _fields(template: str) -> list[tuple] | None:
    """Return the replacement fields of ``template`` (None: unbalanced braces)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None
    return [(name, spec, conv) for _, name, spec, conv in parsed if name is not None]


def check_templates(templates: Sequence[str]) -> list[str]:
    """Return the templates; raise ValueError when there are none or one lacks a single ``{}``."""
    templates = list(templates)
    if not templates:
        raise ValueError("templates is empty; expected at least one such as 'a photo of a {}'")
    for template in templates:
        if not isinstance(template, str) or _fields(template) != [("", "", None)]:
            raise ValueError(
                f"template {template!r} must contain exactly one '{{}}' where the label goes, "
                "e.g. 'a photo of a {}'"
            )
    return templates


@torch.no_grad()
def class_embeddings(model, labels: Sequence[str], templates: Sequence[str]) -> Tensor:
    """Embed every label through every template and average, as CLIP does.

    Args:
        model: anything with ``encode_text(list[str]) -> (B, E)`` unit-norm rows.
        labels: C label names.
        templates: T prompts, each with one ``{}``.

    Returns:
        (C, E): the mean of the T normalised prompt embeddings of each label, re-normalised.
    """
    labels = check_labels(labels)
    templates = check_templates(templates)
    prompts = [t.format(label) for label in labels for t in templates]  # C*T, label-major
    text = model.encode_text(prompts).reshape(len(labels), len(templates), -1)  # (C, T, E)
    return F.normalize(F.normalize(text, dim=-1).mean(dim=1), dim=-1)


@torch.no_grad()
def embed_images(model, dataset, batch_size: int = 256) -> Tensor:
    """Return the unit-norm image embeddings (N, E) of every sample of ``dataset``."""
    out = []
    for start in range(0, len(dataset), batch_size):
        batch = [dataset[i][0] for i in range(start, min(start + batch_size, len(dataset)))]
        out.append(model.encode_image(torch.stack(batch)).cpu())
    if not out:
        raise ValueError("dataset is empty; zero-shot evaluation needs at least one image")
    return torch.cat(out)


def confusion_matrix(targets: Tensor, predictions: Tensor, num_classes: int) -> Tensor:
    """Count (true, predicted) pairs: targets (N,), predictions (N,) -> (C, C), rows = truth."""
    if targets.shape != predictions.shape or targets.ndim != 1:
        raise ValueError(
            f"targets and predictions must be (N,) of equal length, got {tuple(targets.shape)} "
            f"and {tuple(predictions.shape)}"
        )
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def retrieval_recall(
    image: Tensor, text: Tensor, match: Tensor, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """Image->text and text->image recall@k.

    A query counts as found at k when any of its k nearest candidates is a match (captions that
    several images share are entered once, so every image has one correct text and a text may
    have many correct images).

    Args:
        image: (N, E) unit-norm image embeddings.
        text: (M, E) unit-norm text embeddings.
        match: (N, M) bool, True where image i and text j belong together.
        ks: the cut-offs.

    Returns:
        ``{"image_to_text@k": ..., "text_to_image@k": ...}`` for each k, fractions in [0, 1].
    """
    if match.shape != (image.shape[0], text.shape[0]):
        raise ValueError(
            f"match must be (N, M) = {(image.shape[0], text.shape[0])}, got {tuple(match.shape)}"
        )
    sim = image @ text.T  # (N, M)
    out = {}
    for k in ks:
        k_t, k_i = min(k, sim.shape[1]), min(k, sim.shape[0])
        top_text = sim.topk(k_t, dim=1).indices  # (N, k)
        top_image = sim.topk(k_i, dim=0).indices  # (k, M)
        found_t = match.gather(1, top_text).any(dim=1)  # (N,)
        found_i = match.T.gather(1, top_image.T).any(dim=1)  # (M,)
        out[f"image_to_text@{k}"] = found_t.float().mean().item()
        out[f"text_to_image@{k}"] = found_i.float().mean().item()
    return out


def caption_match(captions: Sequence[str]) -> tuple[list[str], Tensor]:
    """Return the distinct captions (M) and the (N, M) bool matrix of which image has which."""
    distinct = sorted(set(captions))
    index = {c: j for j, c in enumerate(distinct)}
    match = torch.zeros(len(captions), len(distinct), dtype=torch.bool)
    match[torch.arange(len(captions)), torch.tensor([index[c] for c in captions])] = True
    return distinct, match


def targets_for_labels(dataset, labels: Sequence[str]) -> Tensor:
    """Map each sample of ``dataset`` to its index in ``labels``.

    Labels may be the dataset's class names ("circle"), its colour names ("red") or colour-class
    combinations ("red circle"), in any order; samples whose truth is not among the labels get -1.

    Raises:
        ValueError: the dataset has no labels, or ``labels`` names something it does not know.
    """
    labels = check_labels(labels)
    class_names = getattr(dataset, "class_names", None)
    classes = getattr(dataset, "labels", None)
    if class_names is None or classes is None:
        raise ValueError(
            f"dataset {type(dataset).__name__} has no labels; zero-shot accuracy needs labelled "
            "data (--data shapes, or a pairs CSV with a 'label' column)"
        )
    class_names = list(class_names)
    kinds = [(class_names, [class_names[int(c)] for c in classes])]
    color_names = getattr(dataset, "color_names", None)
    colors = getattr(dataset, "colors", None)
    if color_names is not None and colors is not None:
        color_names = list(color_names)
        color = [color_names[int(c)] for c in colors]
        kinds.append((color_names, color))
        combos = [f"{a} {b}" for a in color_names for b in class_names]
        kinds.append((combos, [f"{a} {b}" for a, b in zip(color, kinds[0][1], strict=True)]))
    index = {label: i for i, label in enumerate(labels)}
    for names, truths in kinds:
        if set(labels) <= set(names):
            return torch.tensor([index.get(t, -1) for t in truths], dtype=torch.long)
    known = ", ".join(class_names)
    extra = f"; or colours: {', '.join(color_names)}; or 'colour class'" if color_names else ""
    raise ValueError(f"labels {labels!r} do not match the dataset's class names: {known}{extra}")


@torch.no_grad()
def _caption_recall(model, dataset, image: Tensor, batch_size: int) -> dict[str, float]:
    captions = getattr(dataset, "captions", None)
    if captions is None:
        return {}
    distinct, match = caption_match(list(captions))  # M captions, (N, M)
    text = torch.cat(
        [
            model.encode_text(distinct[i : i + batch_size]).cpu()
            for i in range(0, len(distinct), batch_size)
        ]
    )  # (M, E)
    return retrieval_recall(image, text, match)


@torch.no_grad()
def evaluate_retrieval(model, dataset, batch_size: int = 256) -> dict[str, float]:
    """Return image->text and text->image recall@1 and @5 over ``dataset.captions``.

    Captions shared by several images are entered once (see ``retrieval_recall``).

    Raises:
        ValueError: the dataset has no captions.
    """
    if getattr(dataset, "captions", None) is None:
        name = getattr(dataset, "name", type(dataset).__name__)
        raise ValueError(f"dataset {name!r} has no captions; retrieval needs image-text pairs")
    was_training = model.training
    model.eval()
    try:
        image = embed_images(model, dataset, batch_size)
        return _caption_recall(model, dataset, image, batch_size)
    finally:
        model.train(was_training)


@dataclass
class ZeroShotResult:
    """Zero-shot numbers on one dataset; fractions in [0, 1]."""

    labels: list[str]
    accuracy: float
    chance: float
    confusion: Tensor
    num_samples: int
    seen_accuracy: float | None = None
    unseen_accuracy: float | None = None
    num_seen: int = 0
    num_unseen: int = 0
    recall: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Return a JSON-ready dict."""
        out = {k: v for k, v in self.__dict__.items() if k != "confusion"}
        out["confusion"] = self.confusion.tolist()
        return out


@torch.no_grad()
def evaluate_zero_shot(
    model,
    dataset,
    labels: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    *,
    unseen: Tensor | None = None,
    batch_size: int = 256,
) -> ZeroShotResult:
    """Classify every image of ``dataset`` zero-shot and measure retrieval.

    Args:
        model: a trained ``CLIP`` (``encode_image``, ``encode_text``).
        dataset: images with labels (``class_names``, ``labels``; ``colors`` / ``color_names``
            for colour labels) and optionally ``captions`` for recall@k.
        labels: C label names, e.g. the shape classes.
        templates: prompts, each with one ``{}``; their embeddings are averaged per label.
        unseen: (N,) bool, True for samples whose combination never appeared in training; by
            default ``dataset.unseen`` when it exists.
        batch_size: images per forward pass.

    Returns:
        The ``ZeroShotResult``; samples whose truth is not among ``labels`` are left out of
        accuracy.
    """
    labels = check_labels(labels)
    templates = check_templates(templates)
    targets = targets_for_labels(dataset, labels)  # (N,)
    was_training = model.training
    model.eval()
    try:
        image = embed_images(model, dataset, batch_size)  # (N, E)
        classes = class_embeddings(model, labels, templates).cpu()  # (C, E)
        recall = _caption_recall(model, dataset, image, batch_size)
    finally:
        model.train(was_training)
    predictions = (image @ classes.T).argmax(dim=1)  # (N,)
    keep = targets >= 0
    if not keep.any():
        raise ValueError(f"no sample of the dataset has a label among {labels!r}")
    correct = (predictions == targets) & keep
    if unseen is None:
        unseen = getattr(dataset, "unseen", None)
    result = ZeroShotResult(
        labels=labels,
        accuracy=correct.sum().item() / keep.sum().item(),
        chance=1.0 / len(labels),
        confusion=confusion_matrix(targets[keep], predictions[keep], len(labels)),
        num_samples=int(keep.sum()),
        recall=recall,
    )
    if unseen is not None:
        unseen = torch.as_tensor(unseen, dtype=torch.bool)
        for name, part in (("seen", keep & ~unseen), ("unseen", keep & unseen)):
            n = int(part.sum())
            setattr(result, f"num_{name}", n)
            if n:
                setattr(result, f"{name}_accuracy", correct[part].sum().item() / n)
    log.debug("zero-shot accuracy %.3f (chance %.3f)", result.accuracy, result.chance)
    return result


def format_confusion(confusion: Tensor, labels: Sequence[str]) -> str:
    """Render a (C, C) confusion matrix as a text table, rows = truth, columns = prediction."""
    width = max(6, *(len(label) for label in labels)) + 1
    digits = len(str(int(confusion.max()))) if confusion.numel() else 1
    cells = max(digits, *(len(label) for label in labels)) + 1
    head = " " * width + "".join(label.rjust(cells) for label in labels)
    rows = [
        label.ljust(width) + "".join(str(int(v)).rjust(cells) for v in row)
        for label, row in zip(labels, confusion.tolist(), strict=True)
    ]
    return "\n".join(["truth \\ predicted", head, *rows])


__all__ = [
    "DEFAULT_TEMPLATES",
    "ZeroShotResult",
    "caption_match",
    "check_labels",
    "check_templates",
    "class_embeddings",
    "confusion_matrix",
    "embed_images",
    "evaluate_retrieval",
    "evaluate_zero_shot",
    "format_confusion",
    "retrieval_recall",
    "targets_for_labels",
]

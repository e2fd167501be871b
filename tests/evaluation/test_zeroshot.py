"""Zero-shot classification and retrieval: hand-made answers, then a real CLIP on shapes."""

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from contrastkit.evaluation.zeroshot import (
    caption_match,
    class_embeddings,
    confusion_matrix,
    evaluate_retrieval,
    evaluate_zero_shot,
    format_confusion,
    retrieval_recall,
    targets_for_labels,
)

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "zeroshot_unseen.py"
SHAPES = ["circle", "square", "star"]
COLORS = ["red", "blue"]


class WordModel(torch.nn.Module):
    """A stand-in CLIP: a text is the sum of its word vectors; an image is its shape's vector."""

    def __init__(self, noise: float = 0.0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        words = [*SHAPES, *COLORS, "a", "photo", "of", "picture"]
        self.vectors = {w: torch.randn(16, generator=generator) for w in words}
        for shape in SHAPES:
            self.vectors[shape] *= 4  # the shape word dominates
        self.noise = noise

    def encode_text(self, texts):
        rows = [sum(self.vectors[w] for w in t.split()) for t in texts]
        return F.normalize(torch.stack(rows), dim=1)

    def encode_image(self, images):
        # images: (B, 1) holding the class index; wrong class for negative ones
        rows = [self.vectors[SHAPES[int(i)]] for i in images[:, 0].abs()]
        flip = images[:, 0] < 0
        out = torch.stack(rows)
        out[flip] = -out[flip]
        return F.normalize(out, dim=1)


class Scenes:
    """A labelled dataset with colours, a compositional mask and captions."""

    name = "scenes"
    class_names = SHAPES
    color_names = COLORS

    def __init__(self, labels, colors, unseen, wrong=()):
        self.labels = torch.tensor(labels)
        self.colors = torch.tensor(colors)
        self.unseen = torch.tensor(unseen)
        self.wrong = set(wrong)
        self.captions = [f"a {COLORS[c]} {SHAPES[s]}" for s, c in zip(labels, colors, strict=True)]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        value = -int(self.labels[i]) if i in self.wrong else int(self.labels[i])
        return torch.tensor([float(value)]), int(self.labels[i])


def test_class_embeddings_average_normalised_prompts_then_renormalise():
    model = WordModel()
    templates = ["a photo of a {}", "a {}"]
    out = class_embeddings(model, ["star", "circle"], templates)
    for row, label in zip(out, ["star", "circle"], strict=True):
        prompts = model.encode_text([t.format(label) for t in templates])
        expected = F.normalize(prompts.mean(0), dim=0)
        torch.testing.assert_close(row, expected)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_confusion_matrix_counts_truth_by_prediction():
    cm = confusion_matrix(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 2, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    text = format_confusion(cm, ["circle", "square", "star"])
    assert "circle" in text and text.splitlines()[2].split() == ["circle", "1", "1", "0"]
    with pytest.raises(ValueError, match="targets and predictions"):
        confusion_matrix(torch.zeros(3), torch.zeros(2), 2)


def test_retrieval_recall_on_hand_made_embeddings():
    image = torch.eye(3)
    text = F.normalize(torch.tensor([[1.0, 0.1, 0], [0, 0, 1.0], [0.9, 1.0, 0]]), dim=1)
    match = torch.eye(3, dtype=torch.bool)  # image i belongs with text i
    recall = retrieval_recall(image, text, match, ks=(1, 2))
    # image->text top-1: 0->0 ok, 1->2 wrong, 2->1 wrong; top-2 adds 1->? (2, 0): still wrong
    assert recall["image_to_text@1"] == pytest.approx(1 / 3)
    # text->image top-1: 0->0 ok, 1->2 wrong, 2->1 wrong; top-2: text 2 -> (1, 0) wrong
    assert recall["text_to_image@1"] == pytest.approx(1 / 3)
    assert recall["image_to_text@2"] == pytest.approx(1 / 3)
    distinct, match = caption_match(["a cat", "a dog", "a cat"])
    assert distinct == ["a cat", "a dog"]
    assert match.tolist() == [[True, False], [False, True], [True, False]]


def test_targets_for_class_colour_and_combination_labels():
    ds = Scenes([0, 2, 1], [0, 1, 1], [False, True, False])
    assert targets_for_labels(ds, ["star", "circle", "square"]).tolist() == [1, 0, 2]
    assert targets_for_labels(ds, ["circle", "star"]).tolist() == [0, 1, -1]
    assert targets_for_labels(ds, ["blue", "red"]).tolist() == [1, 0, 0]
    assert targets_for_labels(ds, ["blue star", "red circle"]).tolist() == [1, 0, -1]
    with pytest.raises(ValueError, match="do not match the dataset's class names: circle"):
        targets_for_labels(ds, ["triangle"])

    class Unlabelled:
        labels = None
        class_names = None

    with pytest.raises(ValueError, match="has no labels"):
        targets_for_labels(Unlabelled(), ["circle"])


def test_evaluate_reports_accuracy_seen_unseen_chance_and_recall():
    # 6 images; #1 and #4 are encoded as the wrong shape; #3, #4, #5 are "never seen"
    ds = Scenes([0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], wrong={1, 4})
    result = evaluate_zero_shot(WordModel(), ds, SHAPES, ["a photo of a {}", "a {}"])
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.chance == pytest.approx(1 / 3)
    assert (result.num_seen, result.num_unseen) == (3, 3)
    assert result.seen_accuracy == pytest.approx(2 / 3)
    assert result.unseen_accuracy == pytest.approx(2 / 3)
    assert result.confusion.sum() == 6 and result.confusion.trace() == 4
    directions = ("image_to_text", "text_to_image")
    assert set(result.recall) == {f"{d}@{k}" for d in directions for k in (1, 5)}
    assert result.recall["image_to_text@5"] >= result.recall["image_to_text@1"]
    assert evaluate_retrieval(WordModel(), ds) == result.recall
    # one colour per shape and no wrong encoding: every caption is found first
    clean = Scenes([0, 1, 2], [0, 1, 0], [0, 0, 0])
    recall = evaluate_retrieval(WordModel(), clean)
    assert recall["image_to_text@1"] == 1.0 and recall["text_to_image@1"] == 1.0
    assert result.as_dict()["confusion"] == result.confusion.tolist()


@pytest.mark.parametrize(
    ("labels", "templates", "message"),
    [
        ([], ["a {}"], "labels is empty"),
        (["circle", " "], ["a {}"], "empty name"),
        (["circle", "circle"], ["a {}"], "duplicates"),
        (SHAPES, ["a photo of a"], r"exactly one '\{\}'"),
        (SHAPES, ["a {} {}"], r"exactly one '\{\}'"),
        (SHAPES, ["{0[1]} {}"], r"exactly one '\{\}'"),  # an indexed field: not format's error
        (SHAPES, ["a {:>5}"], r"exactly one '\{\}'"),
        (SHAPES, ["a { photo"], r"exactly one '\{\}'"),
        (SHAPES, [], "templates is empty"),
    ],
)
def test_bad_labels_and_templates(labels, templates, message):
    ds = Scenes([0, 1], [0, 1], [False, False])
    with pytest.raises(ValueError, match=message):
        evaluate_zero_shot(WordModel(), ds, labels, templates)


def test_a_tiny_clip_on_shapes_is_scored_on_the_combinations_it_never_saw():
    """The pipeline on a real CLIP, a few steps: quality is benchmarks/zeroshot_unseen.py's."""
    spec = importlib.util.spec_from_file_location("zeroshot_unseen", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model, test_ds = bench.train_tiny_clip(steps=3, batch_size=32)
    assert int(test_ds.unseen.sum()) > 100  # red stars, green circles... never trained on
    colours = evaluate_zero_shot(model, test_ds, test_ds.color_names, ["a photo of a {} shape"])
    assert colours.chance == pytest.approx(1 / len(test_ds.color_names))
    assert 0.0 <= colours.unseen_accuracy <= 1.0 and 0.0 <= colours.accuracy <= 1.0
    combos = [f"{c} {s}" for c in test_ds.color_names for s in test_ds.class_names]
    pairs = evaluate_zero_shot(model, test_ds, combos, ["a photo of a {}"])
    assert pairs.chance == pytest.approx(1 / len(combos))
    assert 0.0 <= pairs.recall["image_to_text@5"] <= 1.0

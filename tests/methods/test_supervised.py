"""The supervised yardstick: cross-entropy of a linear head on h, through both views."""

import math

import pytest
import torch
from torch import nn

from contrastkit.methods import METHODS, Supervised
from contrastkit.methods.supervised import check_labels

B, IN, F, K = 6, 5, 4, 3


class LinearBackbone(nn.Module):
    """A backbone without BatchNorm, so the loss is a plain function of each row."""

    feature_dim = F

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(IN, F)

    def forward(self, x):
        return torch.tanh(self.linear(x))


def _method(dtype=torch.float32) -> Supervised:
    torch.manual_seed(0)
    return Supervised(LinearBackbone(), num_classes=K).to(dtype)


def _batch(dtype=torch.float32):
    generator = torch.Generator().manual_seed(1)
    x1 = torch.randn(B, IN, generator=generator, dtype=dtype)
    x2 = torch.randn(B, IN, generator=generator, dtype=dtype)
    return x1, x2, torch.tensor([0, 1, 2, 2, 1, 0])


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _reference_loss(method: Supervised, views) -> float:
    """Cross-entropy written out in float64 Python: mean of logsumexp(logits) - logit[y]."""
    w_b = method.backbone.linear.weight.detach().double().tolist()
    b_b = method.backbone.linear.bias.detach().double().tolist()
    w_h = method.head.weight.detach().double().tolist()
    b_h = method.head.bias.detach().double().tolist()
    x1, x2, y = views
    total, rows = 0.0, 0
    for x in (x1, x2):
        for row, label in zip(x.double().tolist(), y.tolist(), strict=True):
            h = [math.tanh(_dot(ws, row) + b) for ws, b in zip(w_b, b_b, strict=True)]
            logits = [_dot(ws, h) + b for ws, b in zip(w_h, b_h, strict=True)]
            top = max(logits)
            log_z = top + math.log(sum(math.exp(z - top) for z in logits))
            total += log_z - logits[label]
            rows += 1
    return total / rows


def test_registered_and_trained_with_labels():
    assert METHODS["supervised"] is Supervised
    assert Supervised.needs_labels and Supervised.view_recipe == "pair"


def test_loss_is_the_cross_entropy_of_both_views():
    method = _method()
    views = list(_batch())
    out = method.training_step(views)
    assert out["loss"].item() == pytest.approx(_reference_loss(method, views), rel=1e-5)
    assert out["embedding"].shape == (B, F) and not out["embedding"].requires_grad
    assert 0.0 <= out["accuracy"].item() <= 1.0


def test_accuracy_counts_the_rows_whose_argmax_is_the_label():
    method = _method()
    x1, x2, y = _batch()
    with torch.no_grad():
        logits = method.head(method.backbone(torch.cat([x1, x2])))
    predicted = logits.argmax(dim=1)[:B]
    out = method.training_step([x1, x1, predicted])  # both views agree with their own argmax
    assert out["accuracy"].item() == 1.0


def test_gradients_match_finite_differences():
    method = _method(torch.float64)
    x1, x2, y = _batch(torch.float64)
    x1.requires_grad_(True)
    x2.requires_grad_(True)
    step = lambda a, b: method.training_step([a, b, y])["loss"]  # noqa: E731
    assert torch.autograd.gradcheck(step, (x1, x2))

    # the head's and the backbone's weights, against central differences of the reference
    method.training_step([x1, x2, y])["loss"].backward()
    eps = 1e-6
    for weight in (method.head.weight, method.backbone.linear.weight):
        for index in ((0, 0), (1, 2)):
            with torch.no_grad():
                weight[index] += eps
                up = _reference_loss(method, (x1, x2, y))
                weight[index] -= 2 * eps
                down = _reference_loss(method, (x1, x2, y))
                weight[index] += eps
            assert weight.grad[index].item() == pytest.approx((up - down) / (2 * eps), abs=1e-7)


def test_num_classes_comes_from_the_data():
    class Labelled:
        labels = torch.tensor([0, 2, 1, 2])
        class_names = ["a", "b", "c", "d"]

    class Unnamed:
        labels = torch.tensor([0, 4, 1])
        class_names = None

    assert Supervised.options_from_data(Labelled()) == {"num_classes": 4}
    assert Supervised.options_from_data(Unnamed()) == {"num_classes": 5}


def test_unlabelled_data_is_refused_with_the_flag_named():
    class Unlabelled:
        name = "folder"
        labels = None

    with pytest.raises(ValueError, match="--method supervised needs labelled data"):
        Supervised.options_from_data(Unlabelled())


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (torch.tensor([0, 1, 2, 3, 0, 1]), r"\[0, 3\) \(num_classes\), got values in \[0, 3\]"),
        (torch.tensor([0, -1, 2, 1, 0, 1]), "-1 marks an unlabelled sample"),
        (torch.zeros(6), "integer tensor"),
        (torch.zeros(5, dtype=torch.long), r"integer tensor \(6,\)"),
    ],
)
def test_bad_labels_are_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        check_labels(labels, B, K)


def test_views_without_labels_are_refused():
    x1, x2, _ = _batch()
    with pytest.raises(ValueError, match=r"expects views \[x1, x2, labels\], got 2"):
        _method().training_step([x1, x2])


def test_zero_classes_is_refused():
    with pytest.raises(ValueError, match="num_classes"):
        Supervised(LinearBackbone(), num_classes=0)

"""The linear probe: logistic regression on standardised frozen features, by one of two solvers.

Both solvers fit the same model to the same objective, scikit-learn's: on features standardised
with the training split's mean and (population) standard deviation, minimise

    0.5 * ||W||^2 + C * sum_i log-loss_i

over the weights W and the unpenalised intercept b. Multinomial (softmax) for more than two
classes; for two, one weight vector (the binary logistic model, logits [0, x W^T + b]), as
scikit-learn fits it.

- ``"sklearn"``: ``LogisticRegression`` (L-BFGS) on float64 NumPy copies; fine while the problem
  is small.
- ``"torch"``: full-batch ``torch.optim.LBFGS`` with a strong-Wolfe line search in float64, on
  any device. The features stay as they are given (float32): each pass standardises and
  converts ``CHUNK_ROWS`` rows at a time, so its memory beyond the features does not grow with
  the number of rows, and it scales to tens of thousands of rows of wide features.
- ``"auto"`` (the default): torch above ``TORCH_PROBE_ABOVE`` values (rows x features), so small
  data keeps scikit-learn's numbers exactly, and large data makes no float64 copy.

Letters used in shapes: M training samples, N test samples, F feature width, K weight rows
(C classes, or 1 for two classes).
"""

from __future__ import annotations

import logging
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

logger = logging.getLogger(__name__)

SOLVERS = ("auto", "sklearn", "torch")
TORCH_PROBE_ABOVE = 4_000_000  # training values (rows x features; a 32 MB float64 copy) above
# which "auto" picks torch
CHUNK_ROWS = 1024  # rows the torch solver standardises in float64 at a time


def _check_split(
    train_feats: Tensor, train_labels: Tensor, test_feats: Tensor, test_labels: Tensor
) -> None:
    """Validate a train/test split of frozen features: (M, F), (M,), (N, F), (N,)."""
    for name, feats, labels in (
        ("train", train_feats, train_labels),
        ("test", test_feats, test_labels),
    ):
        if feats.ndim != 2 or feats.shape[0] < 1:
            raise ValueError(
                f"{name}_feats must be a (N, F) matrix with N >= 1, got shape {tuple(feats.shape)}"
            )
        if labels.ndim != 1 or labels.shape[0] != feats.shape[0]:
            raise ValueError(
                f"{name}_labels must be ({feats.shape[0]},), got shape {tuple(labels.shape)}"
            )
    if train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(
            f"train_feats and test_feats must have the same width, got "
            f"{train_feats.shape[1]} and {test_feats.shape[1]}"
        )


def standardise(train: Tensor, test: Tensor) -> tuple[Tensor, Tensor]:
    """Return both splits in float64, centred and scaled by the training split's statistics.

    As scikit-learn's ``StandardScaler``: the population standard deviation, and a constant
    feature (deviation 0) is only centred.

    Args:
        train: (M, F); test: (N, F).
    """
    mean, std = scaling(train)
    return (train.double() - mean) / std, (test.to(train.device).double() - mean) / std


def scaling(train: Tensor) -> tuple[Tensor, Tensor]:
    """Return the training split's mean and standard deviation (F,) in float64, as ``standardise``
    uses them (a deviation of 0 becomes 1), computed ``CHUNK_ROWS`` rows at a time."""
    chunks = train.split(CHUNK_ROWS)
    mean = sum(chunk.double().sum(0) for chunk in chunks) / train.shape[0]
    variance = sum((chunk.double() - mean).pow(2).sum(0) for chunk in chunks) / train.shape[0]
    std = variance.sqrt()
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def _logits(weight: Tensor, bias: Tensor, x: Tensor) -> Tensor:
    logits = x @ weight.T + bias  # (N, K)
    if weight.shape[0] == 1:  # two classes: the binary model, class 0 has logit 0
        logits = torch.cat([torch.zeros_like(logits), logits], dim=1)  # (N, 2)
    return logits


def logistic_objective(
    weight: Tensor, bias: Tensor, x: Tensor, targets: Tensor, C: float
) -> Tensor:
    """Return scikit-learn's objective 0.5 * ||W||^2 + C * sum of log-losses (a scalar).

    Args:
        weight: (K, F) with K = C classes, or K = 1 for two classes (scikit-learn's ``coef_``).
        bias: (K,) the intercept (``intercept_``), not penalised.
        x: (M, F) standardised features.
        targets: (M,) class indices in [0, number of classes).
        C: inverse regularisation strength.
    """
    loss = F.cross_entropy(_logits(weight, bias, x), targets, reduction="sum")
    return 0.5 * weight.pow(2).sum() + C * loss


def fit_logistic_regression(
    x: Tensor,
    targets: Tensor,
    num_classes: int,
    C: float = 1.0,
    max_iter: int = 2000,
    *,
    center: Tensor | None = None,
    scale: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Return (weight (K, F), bias (K,)) minimising ``logistic_objective`` by full-batch L-BFGS.

    Minimises the objective divided by C * M (the same minimiser, better scaled), in float64 on
    x's device, from zero as scikit-learn starts; deterministic for a given device. Each pass
    goes over x ``CHUNK_ROWS`` rows at a time, converting only those rows to float64.

    Args:
        x: (M, F) standardised features, or raw ones with ``center`` and ``scale``.
        targets: (M,) class indices.
        num_classes: C >= 2.
        C: inverse regularisation strength; max_iter: L-BFGS iterations.
        center, scale: (F,) float64: the model sees (x - center) / scale (``scaling``).
    """
    rows = 1 if num_classes == 2 else num_classes
    weight = torch.zeros(rows, x.shape[1], dtype=torch.float64, device=x.device)
    bias = torch.zeros(rows, dtype=torch.float64, device=x.device)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    factor = 1.0 / (C * x.shape[0])
    inputs = list(zip(x.split(CHUNK_ROWS), targets.split(CHUNK_ROWS), strict=True))

    def standardised(chunk: Tensor) -> Tensor:
        chunk = chunk.double()
        return chunk if center is None else (chunk - center) / scale

    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-6,
        tolerance_change=1e-12,
        history_size=10,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:  # the objective and its gradient, one chunk of rows at a time
        optimizer.zero_grad()
        penalty = 0.5 * weight.pow(2).sum() * factor
        penalty.backward()
        total = penalty.detach()
        for chunk, chunk_targets in inputs:
            logits = _logits(weight, bias, standardised(chunk))
            loss = F.cross_entropy(logits, chunk_targets, reduction="sum") * (C * factor)
            loss.backward()
            total = total + loss.detach()
        return total

    with torch.enable_grad():
        optimizer.step(closure)
    if optimizer.state[weight].get("n_iter", 0) >= max_iter:
        logger.warning("linear probe: L-BFGS did not converge in %d steps", max_iter)
    return weight.detach(), bias.detach()


def _torch_probe(train_feats, train_labels, test_feats, test_labels, max_iter, C, device):
    device = train_feats.device if device is None else torch.device(device)
    train_x, test_x = train_feats.to(device), test_feats.to(device)
    center, scale = scaling(train_x)
    train_labels = train_labels.to(device).long()
    classes = torch.unique(train_labels)  # sorted, as scikit-learn's classes_
    if len(classes) < 2:
        raise ValueError(f"train_labels must hold at least 2 classes, got {classes.tolist()}")
    targets = torch.searchsorted(classes, train_labels)
    weight, bias = fit_logistic_regression(
        train_x, targets, len(classes), C, max_iter, center=center, scale=scale
    )
    with torch.no_grad():
        logits = [
            _logits(weight, bias, (c.double() - center) / scale) for c in test_x.split(CHUNK_ROWS)
        ]
        predicted = classes[torch.cat(logits).argmax(1)]
    return float((predicted == test_labels.to(device)).double().mean())


def _sklearn_probe(train_feats, train_labels, test_feats, test_labels, max_iter, C):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, C=C))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(train_feats.double().cpu().numpy(), train_labels.cpu().numpy())
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        logger.warning("linear probe: logistic regression did not converge in %d steps", max_iter)
    return float(model.score(test_feats.double().cpu().numpy(), test_labels.cpu().numpy()))


def linear_probe_accuracy(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    max_iter: int = 2000,
    C: float = 1.0,
    *,
    solver: str = "auto",
    device: str | torch.device | None = None,
) -> float:
    """Return the test accuracy of a logistic regression trained on frozen, standardised features.

    Args:
        train_feats: (M, F); train_labels: (M,).
        test_feats: (N, F); test_labels: (N,).
        max_iter: L-BFGS iterations.
        C: inverse L2 regularisation strength (scikit-learn's convention).
        solver: "sklearn", "torch", or "auto": torch when M * F > ``TORCH_PROBE_ABOVE``.
        device: where the torch solver runs (default: the features' device).

    Raises:
        ValueError: bad shapes, an unknown solver, or (torch) fewer than 2 training classes.
    """
    _check_split(train_feats, train_labels, test_feats, test_labels)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    if solver == "auto":
        solver = "torch" if train_feats.numel() > TORCH_PROBE_ABOVE else "sklearn"
    if solver == "torch":
        return _torch_probe(train_feats, train_labels, test_feats, test_labels, max_iter, C, device)
    return _sklearn_probe(train_feats, train_labels, test_feats, test_labels, max_iter, C)


__all__ = [
    "CHUNK_ROWS",
    "SOLVERS",
    "TORCH_PROBE_ABOVE",
    "fit_logistic_regression",
    "linear_probe_accuracy",
    "logistic_objective",
    "scaling",
    "standardise",
]

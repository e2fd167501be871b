"""The user's own data and network, made to follow the contracts the trainer relies on.

``as_dataset`` wraps what ``contrastkit.fit`` accepts as ``data`` into a dataset of the
``contrastkit.data`` contract (``ds[i] -> (x, y)``, ``kind``, ``input_shape``):

- a tensor ``x`` or a tuple ``(x,)`` / ``(x, y)``: x (N, C, H, W) images or (N, D) vectors,
  float or uint8 (divided by 255); y (N,) integer labels (-1 for unlabelled samples);
- a ``torch.utils.data.Dataset`` (or any object with ``__len__`` and ``__getitem__``) whose items
  are an image, ``(image,)`` or ``(image, label)``; an image is a (C, H, W) tensor (float in
  [0, 1], or uint8), a PIL image (converted to RGB unless it is grayscale), or a (D,) vector.

Every item is checked when it is read, so a wrong one is a ``ValueError`` naming ``data[i]``.

``as_backbone`` gives the user's ``nn.Module`` the ``feature_dim`` the methods' heads are sized
by, found with one forward pass of two zero samples.

Letters used in shapes: N samples, C channels, H/W height/width, D vector width, F features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import Dataset

EVAL_FRACTION = 0.2  # held out for evaluation when no eval_data is given
_FORMS = "a (C, H, W) image tensor, a PIL image, a (D,) vector, (image,) or (image, label)"


def _as_tensor(x: Any, where: str) -> Tensor:
    """Return one sample as a float tensor: (C, H, W) in [0, 1] or (D,)."""
    if isinstance(x, Image.Image):
        if x.mode not in ("L", "RGB"):
            x = x.convert("RGB")
        array = np.asarray(x)  # (H, W) or (H, W, 3) uint8
        x = torch.from_numpy(array.copy()).reshape(*array.shape[:2], -1).permute(2, 0, 1)
    if not isinstance(x, Tensor):
        raise ValueError(f"{where} is a {type(x).__name__}; expected {_FORMS}")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif not x.dtype.is_floating_point:
        raise ValueError(f"{where} has dtype {x.dtype}; expected a float or uint8 image")
    if x.ndim not in (1, 3):
        raise ValueError(
            f"{where} has shape {tuple(x.shape)}; expected (C, H, W) or (D,) (a grayscale "
            "(H, W) image needs its channel: x.unsqueeze(0))"
        )
    return x.float()


def _as_label(y: Any, where: str) -> int:
    """Return a class label as an int (-1: unlabelled)."""
    if isinstance(y, Tensor) and y.numel() == 1 and not y.dtype.is_floating_point:
        y = y.item()
    if isinstance(y, np.integer):
        y = int(y)
    if isinstance(y, bool) or not isinstance(y, int):
        raise ValueError(f"{where} label is a {type(y).__name__}; expected an int class (or -1)")
    return y


def _split_item(item: Any, where: str) -> tuple[Any, int]:
    """Return (x, y) of one item: x alone, (x,) or (x, y)."""
    if isinstance(item, tuple | list):
        if len(item) not in (1, 2):
            raise ValueError(
                f"{where} is a {type(item).__name__} of {len(item)}; expected {_FORMS}"
            )
        return item[0], (_as_label(item[1], where) if len(item) == 2 else -1)
    return item, -1


class _TensorSamples:
    """Rows of x (N, ...) and y (N,) read as (x[i], y[i])."""

    def __init__(self, x: Tensor, y: Tensor | None) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.x[index], (-1 if self.y is None else int(self.y[index]))


class UserData(Dataset):
    """The user's samples under the ``contrastkit.data`` contract: ``ds[i] -> (x, y)``.

    Args:
        source: anything with ``__len__`` and ``__getitem__`` whose items are one of ``_FORMS``.
        name: what ``config.data`` records (``"python:<class name>"``).
        index: the positions of ``source`` this dataset holds (None: all of them).
        labels: (N,) labels known without reading the items (tensor input), else None (a
            Dataset's labels are read from its items when evaluating).
    """

    def __init__(self, source, name: str, index: Sequence[int] | None = None, labels=None) -> None:
        self.source, self.name = source, name
        self.index = list(range(len(source))) if index is None else list(index)
        self.labels, self.class_names = labels, getattr(source, "class_names", None)
        if not self.index:
            raise ValueError("data has no samples; expected at least 2")
        x, _ = self._read(0)
        self.input_shape = tuple(x.shape)
        self.kind = "images" if x.ndim == 3 else "points"

    def _read(self, i: int) -> tuple[Tensor, int]:
        where = f"data[{self.index[i]}]"
        x, y = _split_item(self.source[self.index[i]], where)
        return _as_tensor(x, where), y

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x, y = self._read(i)
        if tuple(x.shape) != self.input_shape:
            raise ValueError(
                f"data[{self.index[i]}] has shape {tuple(x.shape)} but data[{self.index[0]}] "
                f"has {self.input_shape}; every sample must have the same shape"
            )
        return x, y

    def subset(self, index: Sequence[int]) -> UserData:
        """Return the samples at positions ``index`` of this dataset (same source)."""
        labels = None if self.labels is None else self.labels[torch.as_tensor(list(index))]
        return UserData(self.source, self.name, [self.index[i] for i in index], labels)


def _from_tensors(parts: tuple) -> UserData:
    """Wrap ``(x,)`` or ``(x, y)`` tensors."""
    if len(parts) not in (1, 2) or not all(isinstance(p, Tensor) for p in parts):
        raise ValueError("data as tensors must be x, (x,) or (x, y)")
    x, y = parts[0], (parts[1] if len(parts) == 2 else None)
    if x.ndim not in (2, 4):
        raise ValueError(
            f"data x has shape {tuple(x.shape)}; expected (N, C, H, W) images or (N, D) vectors"
        )
    if y is not None and (y.shape != x.shape[:1] or y.dtype.is_floating_point):
        raise ValueError(
            f"data y must hold ({len(x)},) integer labels, got {y.dtype} {tuple(y.shape)}"
        )
    labels = None if y is None else y.long()
    return UserData(_TensorSamples(x, labels), "python:Tensor", labels=labels)


def as_dataset(data: Any) -> UserData:
    """Wrap the user's tensors or Dataset (see the module docstring); check the first sample.

    Raises:
        ValueError: naming ``data``: not tensors nor a dataset, no samples, or a bad first item.
    """
    if isinstance(data, Tensor):
        return _from_tensors((data,))
    if isinstance(data, tuple) and data and all(isinstance(p, Tensor) for p in data):
        return _from_tensors(data)
    if isinstance(data, str | bytes) or not (
        hasattr(data, "__len__") and hasattr(data, "__getitem__")
    ):
        raise ValueError(
            f"data must be a dataset name (e.g. 'digits'), a torch Dataset, or tensors "
            f"(x,) / (x, y); got a {type(data).__name__}"
        )
    return UserData(data, f"python:{type(data).__name__}")


def eval_split(dataset: UserData, seed: int) -> tuple[UserData, UserData]:
    """Return (training, held-out) parts for evaluation: a seeded ``EVAL_FRACTION`` held out."""
    n = len(dataset)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = min(max(round(EVAL_FRACTION * n), 1), n - 1)
    return dataset.subset(sorted(order[n_test:])), dataset.subset(sorted(order[:n_test]))


def as_backbone(module: Any, input_shape: Sequence[int]) -> nn.Module:
    """Set ``module.feature_dim`` to F from one forward pass of two zeros (2, *input_shape).

    The pass runs in eval mode without gradients and leaves the RNG and the mode as they were.

    Raises:
        ValueError: naming ``backbone``: not an ``nn.Module``, a forward pass that fails, an
            output that is not (2, F), or a ``feature_dim`` that disagrees with F.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(
            "backbone must be a name (mlp, cnn, resnet18, vit, ...) or a torch.nn.Module, got "
            f"a {type(module).__name__}"
        )
    param = next(module.parameters(), None)
    zeros = torch.zeros(2, *input_shape, device=None if param is None else param.device)
    was_training = module.training
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = module.eval()(zeros)
    except (RuntimeError, ValueError, TypeError) as err:
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise ValueError(
            f"backbone fails on a batch of shape {tuple(zeros.shape)}: {first}"
        ) from None
    finally:
        module.train(was_training)
    if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"backbone must map (B, {', '.join(map(str, input_shape))}) to (B, F) features; "
            f"on a batch of 2 it returned {shape}"
        )
    declared = getattr(module, "feature_dim", None)
    if declared is not None and declared != out.shape[1]:
        raise ValueError(f"backbone.feature_dim is {declared} but its output has {out.shape[1]}")
    module.feature_dim = int(out.shape[1])
    return module


__all__ = ["EVAL_FRACTION", "UserData", "as_backbone", "as_dataset", "eval_split"]

"""The Python training API: ``contrastkit.fit(data, method=..., backbone=..., **settings)``.

One call trains a method on a dataset name, the user's own ``Dataset`` or tensors
(``user_inputs.as_dataset``), with a named backbone or the user's own ``nn.Module``
(``user_inputs.as_backbone``), into a run folder like ``contrastkit train`` writes, and returns
the trained method, the folder and its summary. Every other ``TrainConfig`` field is a keyword
(``steps=``, ``batch_size=``, ``lr=``, ``logger="tensorboard"``, ``progress=False``, ...).

Progress goes to stderr as for the command line: the run folder first, then a bar on a terminal
or a line every few percent elsewhere (a notebook, a file, a pipe), then each evaluation stage.

With the user's own data, ``config.json`` records ``data`` (and, for a module, ``backbone``) as
``"python:<class name>"``: such a run cannot be resumed or re-evaluated from the command line.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from contrastkit.checkpoint import load_checkpoint
from contrastkit.methods import Method
from contrastkit.training.config import GLOBAL_DEFAULTS, TrainConfig
from contrastkit.training.runs import (
    CHECKPOINT_FILE,
    SUMMARY_FILE,
    build_method,
    eval_splits,
    evaluate_run,
    read_config,
    write_json,
)
from contrastkit.training.trainer import resolve_device, train
from contrastkit.training.user_inputs import as_backbone, as_dataset, eval_split

# the keywords of ``fit`` itself, which ``**settings`` may not repeat
_OWN = ("data", "method", "backbone", "input_shape")


@dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
        method: the trained method (eval mode, on the training device); ``method.embed(x)``
            gives the representation h, ``method.backbone`` is the encoder.
        run_dir: the run folder (config.json, metrics.jsonl, checkpoint.pt, summary.json, plots).
        metrics: the run's summary (``summary.json``): losses, speed and, unless ``eval=False``,
            ``metrics["eval"]`` with kNN / linear probe / separation of the raw input, the
            initial and the trained encoder (``"skipped"`` says which could not be computed and
            why, e.g. unlabelled data).
    """

    method: Method
    run_dir: Path
    metrics: dict[str, Any]


def fit(
    data: Any,
    *,
    method: str = "simclr",
    backbone: str | nn.Module | None = None,
    eval_data: Any = None,
    overwrite: bool = False,
    **settings: Any,
) -> FitResult:
    """Train ``method`` on ``data`` into a new run folder and evaluate it.

    Args:
        data: a dataset spec (``"digits"``, ``"folder:~/photos"``), a torch ``Dataset`` of
            images (C, H, W tensors or PIL) or vectors, alone or with int labels, or tensors
            ``x`` / ``(x,)`` / ``(x, y)`` (see ``contrastkit.training.user_inputs``).
        method: a name of ``contrastkit.methods.METHODS``.
        backbone: a backbone name (``"cnn"``, ``"resnet18"``, ...; default: the data's), or an
            ``nn.Module`` mapping (B, *sample shape) to (B, F); F is found by one forward pass
            of two zero samples and set as ``backbone.feature_dim``. The module is trained in
            place.
        eval_data: held-out data for the evaluation, in the same forms as ``data`` (the user's
            own data only); default: a seeded 20% of ``data`` (seen in training, without
            its labels, as every sample is).
        overwrite: replace the files of an existing run folder ``out``.
        **settings: ``TrainConfig`` fields (``steps``, ``epochs``, ``batch_size``, ``lr``,
            ``out``, ``logger``, ``device``, ``seed``, ``progress``, ``eval``, ...). With the
            user's own data, ``batch_size`` defaults to 256 or the number of samples if fewer.

    Raises:
        ValueError: a bad argument or setting, named (``data``, ``backbone``, the field).
        OSError: the run folder cannot be written.
        TrainingDiverged: the loss became non-finite.
    """
    repeated = sorted(set(settings) & set(_OWN))
    if repeated:
        raise ValueError(f"fit() takes {repeated} as its own arguments, not as settings")
    dataset = None if isinstance(data, str) else as_dataset(data)
    held_out = _held_out(dataset, eval_data)  # checked before training, not after
    values = {"method": method, "backbone": backbone, **settings, "data": data}
    module = _own_objects(values, dataset, settings)
    config = TrainConfig.from_dict(values, source="fit")
    own, evaluate = dataset is not None or module is not None, config.eval
    if own:
        config.eval = False  # evaluated below, with the user's splits and initial network
    initial = copy.deepcopy(module) if evaluate and module is not None else None
    say = _stderr if config.progress else None
    run_dir = train(
        config,
        overwrite=overwrite,
        on_start=(lambda folder: _stderr(f"run folder: {folder}")) if say else None,
        dataset=dataset,
        backbone=module,
    )
    config = read_config(run_dir)  # resolved: batch size, run length, method options
    device = resolve_device(config.device)
    trained = build_method(config, module).to(device)
    trained.load_state_dict(load_checkpoint(run_dir / CHECKPOINT_FILE)["model"])
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    if own and evaluate:
        if dataset is None:
            splits = eval_splits(config)
        else:
            splits = eval_split(dataset, config.seed) if held_out is None else (dataset, held_out)
        start = None if initial is None else build_method(config, initial)
        summary["eval"] = evaluate_run(
            trained, config, run_dir, str(device), say, splits=splits, initial=start
        )
        write_json(run_dir / SUMMARY_FILE, summary)
    return FitResult(trained.eval(), run_dir, summary)


def _own_objects(values: dict[str, Any], dataset, settings: dict[str, Any]) -> nn.Module | None:
    """Record the user's data and backbone in ``values``; return the backbone module or None.

    Raises:
        ValueError: ``eval_every`` with the user's data, or a bad ``backbone`` module.
    """
    if dataset is not None:
        values["data"] = dataset.name
        if settings.get("batch_size") is None:  # small data: one batch of all of it
            values["batch_size"] = min(GLOBAL_DEFAULTS["batch_size"], len(dataset))
        if settings.get("eval_every"):
            raise ValueError("eval_every: the online kNN needs a dataset name, not your own data")
        values["eval_every"] = 0  # the online kNN reads its splits from config.data
    backbone = values["backbone"]
    if backbone is None or isinstance(backbone, str):
        return None
    shape = dataset.input_shape if dataset is not None else _spec_shape(values["data"], settings)
    module = as_backbone(backbone, shape)
    values["backbone"] = f"python:{type(module).__name__}"
    return module


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _spec_shape(spec: str, settings: dict[str, Any]) -> tuple[int, ...]:
    """Return the sample shape of the dataset ``spec`` (to size the user's backbone)."""
    config = TrainConfig.from_dict({"data": spec, "seed": settings.get("seed", 0)}, source="fit")
    return tuple(eval_splits(config)[0].input_shape)


def _held_out(dataset, eval_data) -> Any:
    """Return ``eval_data`` wrapped like ``data`` (None when not given).

    Raises:
        ValueError: eval_data with a dataset name, or samples of another shape than data's.
    """
    if eval_data is None:
        return None
    if dataset is None:
        raise ValueError("eval_data goes with the user's own data; a dataset name has its split")
    held_out = as_dataset(eval_data)
    if held_out.input_shape != dataset.input_shape:
        raise ValueError(
            f"eval_data samples have shape {held_out.input_shape}; data's are {dataset.input_shape}"
        )
    return held_out


__all__ = ["FitResult", "fit"]

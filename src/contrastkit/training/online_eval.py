"""Online evaluation: kNN accuracy of h on the held-out split at a few steps during training.

``--eval-every N`` evaluates every N steps and at the last step; left unset, four evaluations
spread evenly over the run (the last at its end); 0 turns them off. Each evaluation embeds a
fixed subset of the training split (at most ``MAX_TRAIN`` samples, the kNN's memory) and of the
held-out split (at most ``MAX_TEST``), chosen once from the same datasets as the final evaluation
(``runs.eval_splits``) and streamed through the encoder at each evaluation (``embed_dataset``:
one batch of images in memory, never the subsets), and computes the weighted kNN accuracy of
``contrastkit.evaluation.metrics`` (k = 20). On the default digits run the four evaluations cost
well under 10% of the training time. On full-resolution photos the subsets are sized so that
the evaluations cost about 10% of the training (``photo_limits``), and a run too short for that is
not evaluated online unless ``--eval-every`` asks. The number can differ slightly from the final
evaluation's kNN, which uses the whole training split.

An evaluation leaves training as it found it: the method goes back to train mode, nothing is
updated (no gradients, BatchNorm in eval mode), and the global RNG (CPU and CUDA) is saved and
restored around it, so a run with online evaluation ends with the same weights as one without,
and a resumed run matches an uninterrupted one. Under torchrun only rank 0 evaluates (the other
processes wait for it at their next collective). Data without labels (a folder without classes,
image-text pairs), data given as a Python object (``contrastkit.fit``) and a held-out split
that cannot be built are skipped with one log line.

Letters used in shapes: N samples.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor
from torch.utils.data import Subset

from contrastkit.data.streaming import FileImages
from contrastkit.evaluation import metrics as ev
from contrastkit.methods import Method
from contrastkit.training.batches import mix_seed
from contrastkit.training.config import PYTHON_OBJECT, TrainConfig
from contrastkit.training.runs import eval_batch_size, eval_splits

logger = logging.getLogger(__name__)

DEFAULT_EVALUATIONS = 4  # when --eval-every is unset
MAX_TRAIN = 2000  # training samples the kNN votes with
MAX_TEST = 1000  # held-out samples it is measured on
# Full-resolution photos cost as much to embed as to train on, so there the evaluations together
# embed at most PHOTO_SHARE of the forward passes training makes (two views, forward and backward:
# about FORWARDS_PER_SAMPLE forwards per sample); below MIN_PHOTO_SAMPLES per evaluation (a run too
# short for it) they are skipped unless --eval-every asks for them.
PHOTO_SHARE = 0.1
FORWARDS_PER_SAMPLE = 6
MIN_PHOTO_SAMPLES = 150


def eval_steps(eval_every: int | None, total: int) -> list[int]:
    """Return the 1-based steps after which to evaluate (sorted, the last one ``total``).

    Args:
        eval_every: N (every N steps and the last), None (``DEFAULT_EVALUATIONS`` evenly
            spaced) or 0 (none).
        total: steps in the whole run.
    """
    if eval_every == 0 or total < 1:
        return []
    if eval_every is None:
        count = min(DEFAULT_EVALUATIONS, total)
        return sorted({round(total * (k + 1) / count) for k in range(count)})
    return sorted({*range(eval_every, total + 1, eval_every), total})


def photo_limits(
    total: int, batch_size: int, evaluations: int, eval_every: int | None
) -> tuple[int, int] | None:
    """Return the (training, held-out) samples of each online evaluation on photos, or None.

    All ``evaluations`` together embed about ``PHOTO_SHARE`` of the forward passes of ``total``
    steps of ``batch_size`` samples, two thirds from the training split; at most ``MAX_TRAIN``
    and ``MAX_TEST``. None (skip) when that is under ``MIN_PHOTO_SAMPLES`` per evaluation and
    ``eval_every`` is None; an explicit ``--eval-every`` gets ``MIN_PHOTO_SAMPLES`` at least.
    """
    budget = int(PHOTO_SHARE * FORWARDS_PER_SAMPLE * total * batch_size / max(evaluations, 1))
    if budget < MIN_PHOTO_SAMPLES:
        if eval_every is None:
            return None
        budget = MIN_PHOTO_SAMPLES
    train = min(MAX_TRAIN, budget * 2 // 3)
    return train, min(MAX_TEST, budget - train)


def _labels(dataset) -> Tensor:
    """Return the labels (N,) of every sample, without decoding images where the data knows them."""
    labels = getattr(dataset, "labels", None)
    if isinstance(labels, Tensor) and labels.shape == (len(dataset),):
        return labels.long()
    if labels is None and isinstance(dataset, FileImages):  # a folder without classes
        return torch.full((len(dataset),), -1, dtype=torch.long)
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


def _subset(dataset, limit: int, seed: int) -> tuple[Subset, Tensor]:
    """Return at most ``limit`` labelled samples (a dataset, read when embedded) and labels (N,)."""
    labels = _labels(dataset)
    index = torch.nonzero(labels >= 0).flatten()
    if len(index) > limit:  # a fixed random subset, drawn without touching the global RNG
        generator = torch.Generator().manual_seed(seed)
        index = index[torch.randperm(len(index), generator=generator)[:limit]].sort().values
    return Subset(dataset, index.tolist()), labels[index]


class OnlineEval:
    """The kNN accuracy of h at chosen steps, on fixed subsets of the two splits.

    Args:
        steps: the 1-based steps after which to evaluate (``eval_steps``).
        train: the samples (a dataset of M) and labels (M,) the kNN votes with.
        test: the samples (a dataset of N) and labels (N,) it is measured on.
        batch_size: samples per forward pass.
        device: where the method runs.
        num_workers: processes reading the samples (0: the main process).
    """

    def __init__(self, steps, train, test, batch_size: int, device, num_workers: int = 0) -> None:
        self.steps = set(steps)
        (self.train, self.train_y), (self.test, self.test_y) = train, test
        self.batch_size, self.device, self.num_workers = batch_size, device, num_workers

    @classmethod
    def of(cls, config: TrainConfig, total: int, device) -> OnlineEval | None:
        """Build the online evaluation of a run, or None when it is off or cannot be done.

        ``--no-eval`` turns it off too, unless ``--eval-every N`` asks for it.
        """
        if not config.eval and config.eval_every is None:
            return None
        steps = eval_steps(config.eval_every, total)
        if not steps:
            return None
        if str(config.data).startswith(PYTHON_OBJECT):  # contrastkit.fit: no split to rebuild
            logger.info("online kNN evaluation skipped: the data is a Python object")
            return None
        try:
            train_ds, test_ds = eval_splits(config)
        except ValueError as err:  # never stop a run for its online evaluation
            logger.info("online kNN evaluation skipped: %s", err)
            return None
        limits = (MAX_TRAIN, MAX_TEST)
        if getattr(train_ds, "full_resolution", False):
            limits = photo_limits(total, config.batch_size, len(steps), config.eval_every)
            if limits is None:
                logger.info(
                    "online kNN evaluation skipped: %d steps of %d photos are too few to spend "
                    "under %.0f%% of them on it (--eval-every N asks for it anyway)",
                    total,
                    config.batch_size,
                    100 * PHOTO_SHARE,
                )
                return None
        train = _subset(train_ds, limits[0], mix_seed(config.seed, -4, 0))
        test = _subset(test_ds, limits[1], mix_seed(config.seed, -4, 1))
        if len(train[1]) == 0 or len(test[1]) == 0:
            logger.info("online kNN evaluation skipped: --data %s has no labels", config.data)
            return None
        batch = eval_batch_size(config, train_ds)
        return cls(steps, train, test, batch, device, config.num_workers)

    def due(self, step: int) -> bool:
        """Return whether to evaluate after the 1-based ``step``."""
        return step in self.steps

    def __call__(self, method: Method) -> float:
        """Return the kNN accuracy of ``method.embed`` now; change nothing in training."""
        devices = [self.device] if torch.device(self.device).type == "cuda" else []
        load = {"batch_size": self.batch_size, "device": self.device}
        load["num_workers"] = self.num_workers
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            train_f, _ = ev.embed_dataset(method, self.train, **load)
            test_f, _ = ev.embed_dataset(method, self.test, **load)
        method.train()
        return ev.knn_accuracy(train_f, self.train_y, test_f, self.test_y)


__all__ = [
    "DEFAULT_EVALUATIONS",
    "MAX_TEST",
    "MAX_TRAIN",
    "OnlineEval",
    "eval_steps",
    "photo_limits",
]

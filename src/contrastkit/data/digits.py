"""scikit-learn's 1,797 real 8x8 handwritten digits (UCI), bundled with scikit-learn.

Images are (1, 8, 8) float tensors in [0, 1] (the original 0..16 grey levels divided by 16).
The train/test split is stratified and fixed (80 % / 20 %, 1,437 / 360 images) whatever the run's
seed, so that numbers from different runs are comparable. Labels are used only for evaluation.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

SPLIT_SEED = 0
TEST_FRACTION = 0.2


class Digits(Dataset):
    """Grayscale 8x8 digits; ``ds[i] -> (x: (1, 8, 8) in [0, 1], y: int in 0..9)``.

    Args:
        images: (N, 1, 8, 8) float in [0, 1].
        labels: (N,) digit of each image.
    """

    kind = "images"
    name = "digits"
    input_shape = (1, 8, 8)
    class_names = [str(d) for d in range(10)]

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.shape[1:] != self.input_shape or labels.shape != images.shape[:1]:
            raise ValueError(
                f"images must be (N, 1, 8, 8) with labels (N,), got {tuple(images.shape)} "
                f"and {tuple(labels.shape)}"
            )
        self.images = images.float()
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])


def build_digits(
    path: str | None = None, *, train: bool = True, seed: int = 0, download: bool = False
) -> Digits:
    """Build the fixed training (1,437 images) or test (360 images) split of the digits.

    Args:
        path: unused (the data ships with scikit-learn); must be None.
        train: which split.
        seed: unused: the split is fixed so that runs with different seeds are comparable.
        download: unused; nothing is ever downloaded.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if path is not None:
        raise ValueError(f"the digits dataset takes no path, got {path!r}")
    pixels, targets = load_digits(return_X_y=True)
    index = torch.arange(len(targets)).numpy()
    train_index, test_index = train_test_split(
        index, test_size=TEST_FRACTION, stratify=targets, random_state=SPLIT_SEED
    )
    chosen = train_index if train else test_index
    images = torch.from_numpy(pixels[chosen]).float().div(16.0).reshape(-1, 1, 8, 8)
    return Digits(images, torch.from_numpy(targets[chosen]).long())

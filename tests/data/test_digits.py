import pytest
import torch

from contrastkit.data import build_dataset


def test_fixed_stratified_split_of_the_1797_digits():
    train = build_dataset("digits", train=True, seed=0)
    test = build_dataset("digits", train=False, seed=5)  # the split ignores the seed
    assert (len(train), len(test)) == (1437, 360)
    assert train.kind == "images" and tuple(train.input_shape) == (1, 8, 8)
    x, y = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and 0 <= y <= 9
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: about 36 of each digit
    assert torch.equal(test.images, build_dataset("digits", train=False, seed=0).images)
    # no image is in both splits
    flat_train = {tuple(row.tolist()) for row in train.images.flatten(1)}
    shared = sum(tuple(row.tolist()) in flat_train for row in test.images.flatten(1))
    assert shared <= 2  # the UCI digits hold a couple of exact duplicates


def test_digits_takes_no_path():
    with pytest.raises(ValueError, match="takes no path"):
        build_dataset("digits:/tmp")

import pytest
import torch

from contrastkit.data import build_dataset
from contrastkit.data.toy import CENTERS, CLUSTER_STD, build_toy, make_clusters


def test_five_clusters_of_twenty_points_around_the_published_centers():
    ds = build_dataset("toy", seed=0)
    assert len(ds) == 100 and ds.kind == "points" and tuple(ds.input_shape) == (2,)
    assert torch.bincount(ds.labels).tolist() == [20] * 5
    for label, center in enumerate(CENTERS):
        points = ds.points[ds.labels == label]
        assert torch.allclose(points.mean(0), torch.tensor(center), atol=0.25)
        assert 0.15 < float(points.std(0).mean()) < 0.45  # std 0.3
    x, y = ds[0]
    assert x.shape == (2,) and isinstance(y, int)


def test_splits_and_seeds():
    train, test = build_toy(train=True, seed=3), build_toy(train=False, seed=3)
    assert not torch.equal(train.points, test.points)
    assert torch.equal(train.points, build_toy(train=True, seed=3).points)
    assert not torch.equal(train.points, build_toy(train=True, seed=4).points)


def test_make_clusters_std():
    points, labels = make_clusters(seed=0, points_per_cluster=4000)
    residual = points - torch.tensor(CENTERS)[labels]
    assert abs(float(residual.std()) - CLUSTER_STD) < 0.01


def test_toy_takes_no_path():
    with pytest.raises(ValueError, match="takes no path"):
        build_dataset("toy:/tmp")

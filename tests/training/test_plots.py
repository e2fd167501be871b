import torch
from PIL import Image

from contrastkit.training import plots


def test_pca_keeps_the_two_main_directions():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(200, 5)
    x[:, 3] = 10 * torch.randn(200, generator=gen)
    x[:, 1] = torch.randn(200, generator=gen)
    xy = plots.project_2d(x)
    assert xy.shape == (200, 2)
    first = torch.corrcoef(torch.stack([xy[:, 0], x[:, 3].double()]))[0, 1]
    second = torch.corrcoef(torch.stack([xy[:, 1], x[:, 1].double()]))[0, 1]
    assert abs(float(first)) > 0.999 and abs(float(second)) > 0.99
    assert plots.project_2d(torch.ones(3, 2)).shape == (3, 2)
    assert plots.project_2d(torch.ones(3, 1)).shape == (3, 2)


def test_pair_similarities_split_by_label():
    feats = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    same, diff = plots.pair_similarities(feats, torch.tensor([0, 0, 1]))
    assert same.tolist() == [1.0] and diff.tolist() == [0.0, 0.0]


def test_figures_are_written_as_png(tmp_path):
    records = [{"event": "step", "step": s, "loss": 3.0 - 0.1 * s} for s in range(1, 11)]
    records += [
        {"event": "epoch", "step": 5, "epoch_loss": 2.7},
        {"event": "epoch", "step": 10, "epoch_loss": 2.2},
    ]
    labels = torch.arange(30) % 3
    panels = {"raw": torch.randn(30, 4), "trained": torch.randn(30, 8)}
    paths = [
        plots.plot_loss(records, tmp_path / "loss.png"),
        plots.plot_embedding_maps(panels, labels, tmp_path / "map.png", ["a", "b", "c"]),
        plots.plot_similarity_histograms(panels, labels, tmp_path / "hist.png"),
    ]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hist.png", "loss.png", "map.png"]

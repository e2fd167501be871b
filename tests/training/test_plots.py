import math
import subprocess
import sys

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


def test_figures_leave_the_matplotlib_backend_alone(tmp_path):
    # a fresh interpreter, so that no earlier test has imported pyplot or picked a backend
    script = f"""
import sys
import matplotlib
matplotlib.use("svg")  # a notebook user's choice, which contrastkit must keep
import torch
import contrastkit
from contrastkit.training import plots
from contrastkit.evaluation import attention
plots.plot_loss([{{"event": "step", "step": 1, "loss": 1.0}}], {str(tmp_path / "loss.png")!r})
attention.save_attention_figure(
    {str(tmp_path / "attention.png")!r}, torch.rand(1, 3, 8, 8), torch.rand(1, 2, 2, 2)
)
assert "matplotlib.pyplot" not in sys.modules, "contrastkit imported pyplot"
print(matplotlib.get_backend())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "svg"
    assert (tmp_path / "loss.png").is_file() and (tmp_path / "attention.png").is_file()


def _drawn(monkeypatch):
    """Capture the figures the plot functions save, instead of writing them."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    return figures


def test_loss_plot_has_a_title_the_uniform_bound_and_a_range_past_the_first_spike(monkeypatch):
    figures = _drawn(monkeypatch)
    records = [{"event": "step", "step": 1, "loss": 40.0}]  # the first step's spike
    records += [{"event": "step", "step": s, "loss": 3.0 - 0.01 * s} for s in range(2, 101)]
    plots.plot_loss(records, "loss.png", bound=math.log(511), title="simclr on digits")
    (ax,) = figures[0].axes
    assert ax.get_title() == "simclr on digits"
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_ydata()[0] for line in dashed] == [math.log(511)]
    assert "log(511)" in dashed[0].get_label()
    low, high = ax.get_ylim()
    assert low < 2.0 and math.log(511) < high < 10  # the bound shows, the spike does not squash
    assert ax.get_xlim() == (0, 100)
    plots.plot_loss(records[1:], "loss.png")  # no negatives (BYOL, ...): no bound line
    assert not [line for line in figures[1].axes[0].get_lines() if line.get_linestyle() == "--"]


def test_maps_and_histograms_have_titles_and_fixed_ranges(monkeypatch):
    figures = _drawn(monkeypatch)
    labels = torch.arange(30) % 3
    panels = {"raw": torch.randn(30, 4), "trained": torch.randn(30, 8)}
    plots.plot_embedding_maps(panels, labels, "map.png")
    plots.plot_similarity_histograms(panels, labels, "hist.png")
    assert "PCA" in figures[0].get_suptitle()
    assert "same label" in figures[1].get_suptitle()
    assert all(ax.get_xlim() == (-1, 1) for ax in figures[1].axes)

"""Evaluation that scales (issue #15, item 4): streamed embedding, a bounded raw baseline, a
torch linear probe for large problems, capped view pairs and plots; small data unchanged."""

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from contrastkit.cli.report import format_eval
from contrastkit.evaluation import linear_probe as lp
from contrastkit.evaluation import metrics as ev
from contrastkit.training import online_eval, plots, runs
from contrastkit.training.batches import DrawDataset, ViewDataset, collate_views
from contrastkit.training.config import TrainConfig
from contrastkit.training.resolve import resolve_config
from contrastkit.transforms import build_view_fn
from contrastkit.transforms.batched import batched_view_fn


class Pictures(Dataset):
    """Tiny images of two classes: ``ds[i] -> (x (3, S, S) in [0, 1], y)``."""

    kind = "images"
    class_names = ["dark", "light"]

    def __init__(self, n: int, seed: int, side: int = 64) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % 2
        noise = torch.rand(n, 3, side, side, generator=generator)
        self.x = 0.5 * noise + 0.5 * self.labels[:, None, None, None].float()
        self.input_shape = (3, side, side)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index], int(self.labels[index])


class StreamedPictures(Pictures):
    """The same, flagged like ``data.streaming.FileImages`` (views cut from ``load(i)``)."""

    full_resolution = True

    def load(self, index: int):
        return (self.x[index] * 255).to(torch.uint8), int(self.labels[index])


def _old_embed(encoder, dataset, batch_size):  # the loop embed_dataset used to run
    feats, labels = [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        feats.append(encoder(torch.stack([x for x, _ in items])).float())
        labels.extend(int(y) for _, y in items)
    return torch.cat(feats), torch.tensor(labels)


def test_embed_dataset_through_the_loader_equals_the_old_loop():
    data = Pictures(23, 0, side=8)
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(192, 5)).eval()
    with torch.no_grad():
        expected, expected_y = _old_embed(encoder, data, 5)
    for workers in (0, 2):
        feats, labels = ev.embed_dataset(encoder, data, batch_size=5, num_workers=workers)
        assert torch.equal(feats, expected) and torch.equal(labels, expected_y)
    with pytest.raises(ValueError, match="num_workers"):
        ev.embed_dataset(encoder, data, num_workers=-1)


def test_raw_baseline_is_area_downsampled_above_32_px_and_unchanged_below():
    big = Pictures(6, 0, side=64)
    feats, labels = ev.raw_features(big, batch_size=4)
    assert feats.shape == (6, 3 * 32 * 32) and labels.tolist() == [0, 1, 0, 1, 0, 1]
    blocks = big.x.double().reshape(6, 3, 32, 2, 32, 2).mean((3, 5))  # 2 x 2 block means
    assert torch.allclose(feats.double(), blocks.flatten(1), atol=1e-6)
    assert ev.raw_shape((3, 224, 224)) == (3, 32, 32) and ev.raw_shape((3, 40, 20)) == (3, 32, 20)
    for small in (Pictures(5, 1, side=32), [(torch.rand(1, 8, 8), 1)] * 3, [(torch.rand(2), 0)]):
        feats, _ = ev.raw_features(small, batch_size=2)
        assert torch.equal(feats, torch.stack([x.reshape(-1).float() for x, _ in small]))


def _blobs(n: int, classes: int, spread: float, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centres = 3 * torch.randn(classes, 6, generator=generator)
    return centres[y] + spread * torch.randn(n, 6, generator=generator), y


@pytest.mark.parametrize("classes", [2, 4])
def test_torch_probe_matches_sklearn_accuracy_and_objective(classes):
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs(240, classes, spread=0.3)  # well separated: both solvers are exact
    accs = [
        lp.linear_probe_accuracy(x[:160], y[:160], x[160:], y[160:], solver=solver)
        for solver in ("sklearn", "torch")
    ]
    assert accs[0] == accs[1] == 1.0
    x, y = _blobs(240, classes, spread=3.0)  # overlapping: a well-defined optimum
    train, _ = lp.standardise(x, x)
    sk = LogisticRegression(max_iter=2000, C=0.5).fit(train.numpy(), y.numpy())
    coef, intercept = torch.from_numpy(sk.coef_), torch.from_numpy(sk.intercept_)
    sk_objective = float(lp.logistic_objective(coef, intercept, train, y, 0.5))
    weight, bias = lp.fit_logistic_regression(train, y, classes, C=0.5)
    assert weight.shape == coef.shape  # one weight row for two classes, as scikit-learn
    torch_objective = float(lp.logistic_objective(weight, bias, train, y, 0.5))
    assert torch_objective == pytest.approx(sk_objective, rel=1e-4)
    assert torch_objective <= sk_objective * (1 + 1e-6)  # at least as close to the optimum


def test_probe_auto_picks_torch_above_the_threshold_and_checks_solver(monkeypatch):
    x, y = _blobs(90, 3, spread=2.0)
    split = (x[:60], y[:60], x[60:], y[60:])
    torch_acc = ev.linear_probe_accuracy(*split, solver="torch")
    monkeypatch.setattr(lp, "TORCH_PROBE_ABOVE", 100)
    assert ev.linear_probe_accuracy(*split) == torch_acc
    with pytest.raises(ValueError, match="solver must be one of auto, sklearn, torch"):
        ev.linear_probe_accuracy(*split, solver="adam")


def _config(dataset, **overrides) -> TrainConfig:
    values = {"data": "python:Pictures", "method": "simclr", "backbone": "cnn"}
    values |= {"backbone_options": {"width": 8}, "progress": False, **overrides}
    return resolve_config(TrainConfig(**values), dataset)


def test_view_pairs_stream_in_batches_equal_to_all_at_once_and_cap_the_samples(monkeypatch):
    data = Pictures(11, 2, side=32)
    config = _config(data, eval_batch_size=4)
    views = ViewDataset(data, build_view_fn("pair", data), config.seed, runs.EVAL_VIEW_EPOCH)
    expected = collate_views([views[i][:2] for i in range(len(data))])  # what eval held before
    batches = list(runs._view_pairs(data, config, "cpu"))
    assert [len(b[0]) for b in batches] == [4, 4, 3]
    for got, want in zip(zip(*batches, strict=True), expected, strict=True):
        assert torch.equal(torch.cat(got), want)
    monkeypatch.setattr(runs, "MAX_VIEW_PAIRS", 5)
    capped = torch.cat([b[0] for b in runs._view_pairs(data, config, "cpu")])
    chosen = [i for row in capped for i in range(len(data)) if torch.equal(row, expected[0][i])]
    assert len(chosen) == 5 and chosen == sorted(set(chosen))  # 5 samples' own views, in order


@pytest.mark.parametrize("kind", [Pictures, StreamedPictures])
def test_evaluate_run_on_64_px_images_names_the_downsampled_raw_input(kind, tmp_path, monkeypatch):
    train_ds, test_ds = kind(24, 0), kind(16, 1)
    config = _config(train_ds)
    drawn = {}

    def record(panels, labels, path, class_names=None, method="pca"):
        drawn[method] = (list(panels), len(labels))

    monkeypatch.setattr(plots, "plot_embedding_maps", record)
    monkeypatch.setattr(runs, "MAX_PLOT_POINTS", 10)
    method = runs.build_method(config)
    results = runs.evaluate_run(method, config, tmp_path, splits=(train_ds, test_ds))
    assert results["raw_label"] == "raw input (32x32 pixels)"
    assert results["raw"]["feature_dim"] == 3 * 32 * 32
    assert all(results[n]["alignment"] is not None for n in ("raw", "random_init", "trained"))
    assert drawn["pca"] == (["raw input (32x32 pixels)", "random init", "trained"], 10)
    assert "raw input (32x32 pixels)" in format_eval(results, "held-out pictures").splitlines()[0]
    if kind is StreamedPictures:  # views cut from ds[i] by the batched recipe, seeded draws
        make = batched_view_fn("pair", test_ds.input_shape)
        draws = DrawDataset(test_ds, make.num_draws, config.seed, runs.EVAL_VIEW_EPOCH)
        x, u = collate_views([list(draws[i]) for i in range(len(test_ds))])
        first, second = make(x, u)[:2]
        expected = ev.alignment(ev.raw_input(first), ev.raw_input(second))
        assert results["raw"]["alignment"] == pytest.approx(expected, rel=1e-9)


def test_online_eval_streams_its_subsets_with_the_same_knn():
    train_ds, test_ds = Pictures(30, 0, side=8), Pictures(12, 1, side=8)
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(192, 4))
    train = online_eval._subset(train_ds, 20, seed=1)
    test = online_eval._subset(test_ds, 100, seed=2)
    assert len(train[0]) == 20 and torch.equal(train[1], train_ds.labels[train[0].indices])
    assert test[0].indices == list(range(12))
    knn = online_eval.OnlineEval([1], train, test, batch_size=7, device="cpu")(encoder)
    x_train = torch.stack([train_ds[i][0] for i in train[0].indices])  # what it used to cache
    with torch.no_grad():
        expected = ev.knn_accuracy(encoder(x_train), train[1], encoder(test_ds.x), test[1])
    assert knn == expected


@pytest.mark.parametrize("kind", [Pictures, StreamedPictures])
def test_photo_limits_subset_full_resolution_data_only(kind, tmp_path, monkeypatch):
    """The end of ``train`` evaluates a seeded subset of a photo folder, all of anything else."""
    train_ds, test_ds = kind(24, 0), kind(16, 1)
    config = _config(train_ds)
    embedded, lines, viewed = [], [], []
    real_embed = ev.embed_dataset

    def embed(encoder, dataset, *args, **kwargs):
        if isinstance(dataset, list):  # a batch of views (alignment)
            viewed.append(len(dataset))
        else:  # a split
            embedded.append([int(dataset[i][1]) for i in range(len(dataset))])
        return real_embed(encoder, dataset, *args, **kwargs)

    monkeypatch.setattr(ev, "embed_dataset", embed)
    method = runs.build_method(config)
    results = runs.evaluate_run(
        method,
        config,
        tmp_path,
        splits=(train_ds, test_ds),
        photo_limits=(10, 6),
        progress=lines.append,
    )
    sizes = [len(labels) for labels in embedded]
    if kind is StreamedPictures:
        assert sizes == [10, 6, 10, 6]  # random init, then trained: train and held-out subsets
        assert sum(viewed) == 2 * 2 * 6  # two views of 6 held-out samples for both networks
        assert any("a seeded subset of 10 training and 6 held-out" in line for line in lines)
        again = runs._photo_subsets(train_ds, test_ds, (10, 6), config.seed, lines.append)
        assert [len(s) for s in again] == [10, 6]  # the same seeded subsets each time
        assert again[0].indices == sorted(again[0].indices)
    else:
        assert sizes == [24, 16, 24, 16] and sum(viewed) == 2 * 2 * 16
        assert not any("subset" in line for line in lines)
    assert 0 <= results["trained"]["knn"] <= 1 and results["trained"]["alignment"] is not None


def test_photos_are_embedded_in_small_batches_everything_else_as_asked():
    config = TrainConfig(data="folder:/photos", eval_batch_size=512)
    assert runs.eval_batch_size(config, StreamedPictures(4, 0)) == runs.PHOTO_EVAL_BATCH == 64
    assert runs.eval_batch_size(config, Pictures(4, 0)) == 512
    small = TrainConfig(data="folder:/photos", eval_batch_size=16)
    assert runs.eval_batch_size(small, StreamedPictures(4, 0)) == 16


def test_online_photo_limits_keep_the_evaluations_near_a_tenth_of_training():
    assert online_eval.photo_limits(4, 32, 4, None) is None  # the 4-step folder smoke run
    assert online_eval.photo_limits(4, 32, 4, 2) == (100, 50)  # asked for: the minimum
    assert online_eval.photo_limits(100, 32, 4, None) == (320, 160)  # 0.1 * 6 * 3200 / 4
    assert online_eval.photo_limits(10_000, 256, 4, None) == (
        online_eval.MAX_TRAIN,
        online_eval.MAX_TEST,
    )


def test_online_eval_on_photos_is_sized_by_the_run_or_skipped(monkeypatch, caplog):
    splits = (StreamedPictures(400, 0, side=8), StreamedPictures(200, 1, side=8))
    monkeypatch.setattr(online_eval, "eval_splits", lambda config: splits)
    config = TrainConfig(data="folder:/photos", batch_size=8, progress=False)
    with caplog.at_level("INFO", logger="contrastkit.training.online_eval"):
        assert online_eval.OnlineEval.of(config, 4, "cpu") is None
    assert "too few to spend under 10%" in caplog.text
    sized = online_eval.OnlineEval.of(config, 200, "cpu")  # budget 0.6 * 200 * 8 / 4 = 240
    assert (len(sized.train), len(sized.test)) == (160, 80)
    asked = online_eval.OnlineEval.of(TrainConfig(**{**vars(config), "eval_every": 2}), 4, "cpu")
    assert (len(asked.train), len(asked.test)) == (100, 50)


def test_torch_probe_in_chunks_equals_one_chunk_and_standardises_on_the_fly(monkeypatch):
    x, y = _blobs(300, 3, spread=3.0)
    raw = x.float() * 5 + 2  # what the probe is given: float32, not yet standardised
    center, scale = lp.scaling(raw)
    train, _ = lp.standardise(raw, raw)
    whole = lp.fit_logistic_regression(train, y, 3, C=0.5)
    monkeypatch.setattr(lp, "CHUNK_ROWS", 64)  # 5 chunks of rows
    torch.testing.assert_close(lp.scaling(raw), (center, scale), rtol=1e-12, atol=0)
    chunked = lp.fit_logistic_regression(raw, y, 3, C=0.5, center=center, scale=scale)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    split = (raw[:200], y[:200], raw[200:], y[200:])
    assert lp.linear_probe_accuracy(*split, solver="torch") == pytest.approx(
        lp.linear_probe_accuracy(*split, solver="sklearn"), abs=0.02
    )

"""Every metric on hand-made inputs whose answer is known, plus a brute-force check."""

import math
import random

import pytest
import torch
from torch import nn

from contrastkit.evaluation import metrics as ev


def test_separation_on_orthogonal_clusters():
    e1, e2 = torch.eye(2)
    feats = torch.stack([e1, 2 * e1, e2, 3 * e2])
    labels = torch.tensor([0, 0, 1, 1])
    assert ev.separation(feats, labels) == pytest.approx(
        {"same": 1.0, "different": 0.0, "gap": 1.0}
    )
    opposite = torch.stack([e1, e1, -e1, -e1])
    assert ev.separation_gap(opposite, labels) == pytest.approx(2.0)


def test_separation_equals_the_mean_over_all_pairs():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(30, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (30,), generator=gen)
    same, diff = [], []
    for i in range(30):
        for j in range(i + 1, 30):
            cos = float(torch.dot(feats[i], feats[j]) / (feats[i].norm() * feats[j].norm()))
            (same if labels[i] == labels[j] else diff).append(cos)
    got = ev.separation(feats, labels)
    assert got["same"] == pytest.approx(sum(same) / len(same), abs=1e-9)
    assert got["different"] == pytest.approx(sum(diff) / len(diff), abs=1e-9)


def test_separation_ignores_unlabelled_and_needs_both_kinds_of_pairs():
    feats = torch.eye(3)
    assert ev.separation(
        torch.cat([feats, feats[:1]]), torch.tensor([0, 1, -1, 0])
    ) == pytest.approx({"same": 1.0, "different": 0.0, "gap": 1.0})
    with pytest.raises(ValueError, match="same-label"):
        ev.separation(feats, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels"):
        ev.separation(feats, torch.tensor([0, 1]))


def test_knn_weighting_beats_majority_vote():
    # test point (1, 0): two class-0 neighbours at cosine 0.5, one class-1 neighbour at 0.9
    train = torch.tensor([[0.5, math.sqrt(0.75)], [0.5, -math.sqrt(0.75)], [0.9, math.sqrt(0.19)]])
    labels = torch.tensor([0, 0, 1])
    test = torch.tensor([[1.0, 0.0]])
    # exp(0.9/0.07) >> 2 exp(0.5/0.07): the weighted vote picks class 1
    assert ev.knn_accuracy(train, labels, test, torch.tensor([1]), k=3) == 1.0
    # with a very soft temperature the weights are nearly equal: the majority (class 0) wins
    assert ev.knn_accuracy(train, labels, test, torch.tensor([0]), k=3, temperature=100.0) == 1.0
    # k=1: nearest neighbour only
    assert ev.knn_accuracy(train, labels, test, torch.tensor([1]), k=1) == 1.0


def test_knn_counts_correct_fraction():
    train = torch.eye(2).repeat(5, 1)
    train_labels = torch.tensor([0, 1] * 5)
    test = torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert ev.knn_accuracy(train, train_labels, test, torch.tensor([0, 1, 1, 1])) == 0.75
    with pytest.raises(ValueError, match="same width"):
        ev.knn_accuracy(train, train_labels, torch.ones(1, 3), torch.tensor([0]))


def test_linear_probe_separable_and_uninformative():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    x[:, 0] += 2 * y - 1  # a margin of 2 between the classes
    assert ev.linear_probe_accuracy(x[:100], y[:100], x[100:], y[100:]) >= 0.95
    noise_labels = torch.randint(0, 2, (200,), generator=gen)
    acc = ev.linear_probe_accuracy(x[:100], noise_labels[:100], x[100:], noise_labels[100:])
    assert acc < 0.7


def test_alignment_known_values():
    z = torch.randn(10, 3)
    assert ev.alignment(z, 2 * z) == pytest.approx(0.0, abs=1e-12)
    assert ev.alignment(z, -z) == pytest.approx(4.0)  # ||u - (-u)||^2 = 4
    orth1, orth2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert ev.alignment(orth1, orth2) == pytest.approx(2.0)
    assert ev.alignment(orth1, orth2, alpha=1) == pytest.approx(math.sqrt(2))


def test_uniformity_known_values():
    assert ev.uniformity(torch.ones(5, 3)) == pytest.approx(0.0, abs=1e-12)
    antipodal = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert ev.uniformity(antipodal) == pytest.approx(-8.0)  # log exp(-2 * 4)
    assert ev.uniformity(torch.eye(6)) == pytest.approx(-4.0)  # all pairs at distance^2 2
    # mixed: 3 points, two identical, one orthogonal: pairs with distance^2 0, 2, 2
    three = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert ev.uniformity(three) == pytest.approx(math.log((1 + 2 * math.exp(-4)) / 3))


def test_uniformity_matches_brute_force_over_chunks():
    rng = random.Random(0)
    z = torch.tensor([[rng.gauss(0, 1) for _ in range(3)] for _ in range(2100)])
    u = torch.nn.functional.normalize(z.double(), dim=1)
    sq = torch.pdist(u).pow(2)
    assert ev.uniformity(z) == pytest.approx(float(sq.mul(-2).exp().mean().log()), abs=1e-9)


def test_effective_rank_known_values():
    assert ev.effective_rank(torch.eye(4)) == pytest.approx(4.0)
    assert ev.effective_rank(torch.ones(10, 5)) == pytest.approx(1.0)
    p = torch.tensor([0.75, 0.25], dtype=torch.float64)
    expected = float(torch.exp(-(p * p.log()).sum()))  # 1.7548
    assert ev.effective_rank(torch.diag(torch.tensor([3.0, 1.0]))) == pytest.approx(expected)
    assert ev.effective_rank(torch.zeros(3, 3)) == 0.0


class _TwoHeads(nn.Module):
    def forward(self, x):  # a "projection" that must not be used
        return torch.full((x.shape[0], 7), -1.0)

    def embed(self, x):
        return x.flatten(1) * 2


def test_embed_dataset_uses_embed_and_keeps_order_and_mode():
    data = [(torch.full((1, 2, 2), float(i)), i % 3) for i in range(5)]
    model = _TwoHeads().train()
    feats, labels = ev.embed_dataset(model, data, batch_size=2)
    assert feats.shape == (5, 4) and torch.equal(feats[:, 0], torch.arange(5.0) * 2)
    assert labels.tolist() == [0, 1, 2, 0, 1] and model.training
    raw, raw_labels = ev.raw_features(data)
    assert raw.shape == (5, 4) and torch.equal(raw_labels, labels)
    plain, _ = ev.embed_dataset(nn.Flatten(), data, batch_size=3)
    assert torch.equal(plain, raw)

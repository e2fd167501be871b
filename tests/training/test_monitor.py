import logging
import math

import torch

from contrastkit.training.monitor import CollapseMonitor, collapse_stats, is_collapsed


def test_healthy_embeddings_are_near_the_uniform_reference():
    torch.manual_seed(0)
    stats = collapse_stats(torch.randn(512, 16))
    assert abs(stats["embedding_std"] - 1 / math.sqrt(16)) < 0.01
    assert stats["embedding_rank"] > 14
    assert not is_collapsed(stats)


def test_complete_and_one_dimensional_collapse_are_detected():
    torch.manual_seed(0)
    constant = torch.ones(64, 8) + 1e-4 * torch.randn(64, 8)
    stats = collapse_stats(constant)
    assert stats["embedding_std"] < 0.01 and stats["embedding_rank"] < 1.1
    assert is_collapsed(stats)
    signs = torch.randint(0, 2, (64, 1)).float() * 2 - 1
    line = signs * torch.tensor([[1.0, 2.0, 0.0, 0.0]])  # +-v: spread, but rank 1
    assert is_collapsed(collapse_stats(line))


def test_monitor_warns_once_and_only_on_collapse(caplog):
    torch.manual_seed(0)
    monitor = CollapseMonitor()
    with caplog.at_level(logging.WARNING, logger="contrastkit.training.monitor"):
        monitor(torch.randn(64, 8), step=1)
        assert not caplog.records
        monitor(torch.ones(64, 8), step=2)
        monitor(torch.ones(64, 8), step=3)
    assert len(caplog.records) == 1
    assert "collapsed at step 2" in caplog.records[0].getMessage()

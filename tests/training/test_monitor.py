import logging
import math

import torch

from contrastkit.training.monitor import (
    CollapseMonitor,
    collapse_stats,
    is_collapsed,
    start_of_run,
)


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


def _cluster(n: int, d: int, generator) -> torch.Tensor:
    """n points near one direction of R^d, spread a little along 4 others (rank ~ 2.6, std
    ~ 0.18 of 1/sqrt(d): above the absolute thresholds, below a quarter of a spread start)."""
    directions = torch.randn(4, d, generator=generator)
    return torch.ones(d) + 0.1 * torch.randn(n, 4, generator=generator) @ directions


def test_a_drop_from_the_runs_own_start_warns_naming_the_remedy(caplog):
    g = torch.Generator().manual_seed(0)
    monitor = CollapseMonitor()
    start = monitor(torch.randn(256, 64, generator=g), step=1)  # spread out: rank ~ 50
    nearly = _cluster(256, 64, g)  # not yet below the absolute thresholds
    assert not is_collapsed(collapse_stats(nearly))
    with caplog.at_level("WARNING"):
        stats = monitor(nearly, step=5)
    assert stats["embedding_rank"] < 0.25 * start["embedding_rank"]
    (record,) = caplog.records
    message = record.getMessage()
    assert "collapsing at step 5" in message and "--resume RUN_DIR --lr" in message


def test_a_healthy_fall_in_rank_with_the_spread_kept_does_not_warn(caplog):
    g = torch.Generator().manual_seed(0)
    monitor = CollapseMonitor()
    monitor(torch.randn(256, 64, generator=g), step=1)
    basis = torch.randn(8, 64, generator=g)  # 8 directions: rank about 8, std kept
    with caplog.at_level("WARNING"):
        monitor(torch.randn(256, 8, generator=g) @ basis, step=5)
    assert caplog.records == []


def test_a_resumed_run_compares_with_the_start_it_recorded():
    start = {"embedding_std": 0.1, "embedding_std_ref": 0.125, "embedding_rank": 40.0, "step": 1}
    assert start_of_run([{"event": "epoch"}, {"event": "step", **start}]) == start
    monitor = CollapseMonitor(start=start)
    g = torch.Generator().manual_seed(0)
    monitor(_cluster(128, 64, g), step=30)
    assert monitor.warned and monitor.start == start

"""Two processes under torchrun train to the same weights as one process with the same batch.

``--batch-size`` is the global batch; each of the W processes takes its contiguous share of
every batch (the same samples and views a single process would see). With DDP averaging the
exact per-process gradients, the weights match to float rounding as long as nothing depends on
per-process batch statistics: the SimCLR head's BatchNorm does, unless ``--sync-bn``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from worker_train import COMMON, NO_BATCH_NORM

HERE = Path(__file__).parent
W = 2


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", weights_only=True)["model"]


def losses(run: Path) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if '"event": "step"' in line]


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def assert_same_run(run: Path, reference: Path) -> None:
    expected = weights(reference)
    for key, value in weights(run).items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6, msg=key)
    assert losses(run) == pytest.approx(losses(reference), rel=1e-5)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One process, the same global batch: with and without BatchNorm in the head."""
    from contrastkit.cli import build_parser
    from contrastkit.cli.train import build_config
    from contrastkit.training.trainer import train

    out = tmp_path_factory.mktemp("single")
    runs = {"no_bn": NO_BATCH_NORM, "bn": []}
    for name, flags in runs.items():  # the command line's settings, without its logging setup
        train(build_config(build_parser().parse_args([*COMMON, "--out", str(out / name), *flags])))
    return {name: out / name for name in runs}


@pytest.mark.slow
@pytest.mark.distributed
def test_torchrun_cli_matches_one_process(torchrun, tmp_path: Path, single) -> None:
    result = torchrun("-m", "contrastkit", *COMMON, "--out", str(tmp_path / "run"), *NO_BATCH_NORM)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.count("run folder:") == 1  # rank 0 alone reports
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(
        p.name for p in single["no_bn"].iterdir()
    )
    assert_same_run(tmp_path / "run", single["no_bn"])


@pytest.fixture(scope="module")
def variants(train_launch: dict) -> tuple[Path, list[dict], str]:
    codes = [rank["codes"] for rank in train_launch["ranks"]]
    return train_launch["out"], codes, train_launch["stderr"]


@pytest.mark.slow
@pytest.mark.distributed
def test_sync_batch_norm_matches_one_process(variants, single) -> None:
    out, codes, _ = variants
    assert [c["sync_bn"] for c in codes] == [0, 0]
    assert_same_run(out / "sync_bn", single["bn"])  # running statistics included


@pytest.mark.slow
@pytest.mark.distributed
def test_per_process_batch_norm_differs_from_one_process(variants, single) -> None:
    """The documented caveat: without --sync-bn each process normalises its own rows."""
    out, codes, _ = variants
    assert [c["local_bn"] for c in codes] == [0, 0]
    assert max_difference(weights(out / "local_bn"), weights(single["bn"])) > 1e-4


@pytest.mark.slow
@pytest.mark.distributed
def test_gradient_caching_across_processes_matches_one_process(variants, single) -> None:
    out, codes, _ = variants
    assert [c["chunked"] for c in codes] == [0, 0]
    assert_same_run(out / "chunked", single["no_bn"])


@pytest.mark.slow
@pytest.mark.distributed
def test_bad_settings_fail_on_every_process_without_hanging(variants) -> None:
    out, codes, stderr = variants
    assert [c["odd_batch"] for c in codes] == [2, 2]
    assert [c["nccl"] for c in codes] == ([2, 2] if not torch.cuda.is_available() else [0, 0])
    message = "batch_size 15 is the global batch and must be divisible by the world size 2"
    assert stderr.count(message) == W
    if not torch.cuda.is_available():
        assert stderr.count("backend 'nccl' needs CUDA GPUs") == W
    assert not (out / "odd_batch").exists() and not (out / "nccl").exists()

"""--logger tensorboard: event files in RUN/tensorboard/, and one line when the extra is missing."""

import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from contrastkit.cli import main
from contrastkit.training.loggers import TensorBoardSink, build_sinks, check_logger
from contrastkit.training.trainer import TrainConfig, train


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_sink_writes_numbers_by_event_and_skips_positions_and_non_numbers(tmp_path):
    sink = TensorBoardSink(tmp_path)
    sink({"event": "step", "step": 1, "epoch": 0, "loss": 2.5, "lr": 0.1, "note": "x"})
    sink({"event": "epoch", "step": 2, "epoch": 1, "epoch_loss": 2.0})
    sink({"event": "eval", "step": 2, "knn": 0.5, "nan": float("nan")})
    sink.close()
    assert scalars(tmp_path) == {
        "train/loss": [(1, 2.5)],
        "train/lr": [(1, pytest.approx(0.1))],
        "epoch/epoch_loss": [(2, 2.0)],
        "eval/knn": [(2, 0.5)],
    }


def test_cli_flag_writes_every_logged_step(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--data", "toy", "--steps", "6", "--logger", "tensorboard", "--no-eval"]
    assert main([*argv, "--quiet", "--out", str(out)]) == 0
    found = scalars(out / "tensorboard")
    assert [step for step, _ in found["train/loss"]] == [1, 2, 3, 4, 5, 6]  # toy: every step
    assert "epoch/epoch_loss" in found


def test_jsonl_has_no_sinks(tmp_path):
    assert build_sinks("jsonl", tmp_path) == [] and not list(tmp_path.iterdir())


def test_missing_tensorboard_is_one_line_naming_the_extra_before_any_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    with pytest.raises(ValueError, match=r'pip install "contrastkit\[tensorboard\]"'):
        check_logger("tensorboard")
    config = TrainConfig(data="toy", steps=2, logger="tensorboard", out=str(tmp_path / "r"))
    with pytest.raises(ValueError, match=r"--logger tensorboard needs the tensorboard package"):
        train(config)
    assert not (tmp_path / "r").exists()

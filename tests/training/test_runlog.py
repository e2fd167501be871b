"""The run log: which steps get a line, epoch means, what is never logged."""

import json

import torch

from contrastkit.training.monitor import CollapseMonitor
from contrastkit.training.runlog import RunLog, step_record
from contrastkit.training.state import RunLength


class Counters:  # the part of TrainingState the log reads and updates
    def __init__(self) -> None:
        self.step, self.epoch_loss, self.epoch_count = 0, 0.0, 0


def test_step_lines_when_due_epoch_means_and_no_state_entries(tmp_path):
    path = tmp_path / "metrics.jsonl"
    state = Counters()
    with RunLog(path, log_every=2, length=RunLength(per_epoch=3, total=5, warmup=0)) as log:
        for step in range(5):
            state.step = step + 1
            out = {
                "loss": torch.tensor(float(step)),
                "term": torch.tensor(2.0),
                "state/center": torch.tensor(1.0),
                "big": torch.ones(3),
            }
            assert log.record(state, out, lr=0.1) == float(step)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["event"], r["step"]) for r in records] == [
        ("step", 1),
        ("step", 2),
        ("epoch", 3),
        ("step", 4),
        ("step", 5),
    ]
    assert records[2] == {"event": "epoch", "step": 3, "epoch": 1, "epoch_loss": 1.0}
    assert records[3]["epoch"] == 1 and records[3]["term"] == 2.0
    assert not any(k.startswith("state/") or k == "big" for r in records for k in r)
    assert (state.epoch_loss, state.epoch_count) == (7.0, 2)  # epoch 2 so far: steps 4 and 5


def test_step_record_adds_the_collapse_statistics():
    out = {"loss": torch.tensor(1.0), "embedding": torch.randn(8, 4)}
    record = step_record(out, step=1, epoch=0, lr=0.5, monitor=CollapseMonitor())
    assert {"embedding_std", "embedding_std_ref", "embedding_rank"} <= set(record)
    assert (record["loss"], record["lr"]) == (1.0, 0.5)

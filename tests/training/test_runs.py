import json

import pytest

from contrastkit.training.runs import check_out_dir, read_config, read_metrics, truncate_metrics


def test_truncate_metrics_keeps_lines_up_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    lines = [json.dumps({"event": "step", "step": s, "loss": 1.0}) for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"event": "st')
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3, 4, 5]
    truncate_metrics(tmp_path, 3)
    assert (tmp_path / "metrics.jsonl").read_text() == "\n".join(lines[:3]) + "\n"


def test_check_out_dir(tmp_path):
    assert check_out_dir(tmp_path / "new" / "run", overwrite=False) == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", overwrite=False)  # an empty folder is fine
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        check_out_dir(tmp_path / "f", overwrite=True)
    with pytest.raises(PermissionError, match="not a writable folder"):
        check_out_dir(tmp_path / "f" / "run", overwrite=False)


def test_read_config_errors(tmp_path):
    with pytest.raises(ValueError, match="not a contrastkit run"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text('{"lrr": 1}')
    with pytest.raises(ValueError, match="unknown key"):
        read_config(tmp_path)

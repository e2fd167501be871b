import os
import pickle

import pytest
import torch

from contrastkit import checkpoint as ck


def test_round_trip_keeps_tensors_and_plain_values(tmp_path):
    path = tmp_path / "checkpoint.pt"
    state = {"model": {"w": torch.arange(3.0)}, "step": 7, "config": {"lr": 0.1, "tags": ["a"]}}
    ck.save_checkpoint(path, state)
    loaded = ck.load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], torch.arange(3.0))
    assert loaded["step"] == 7 and loaded["config"] == {"lr": 0.1, "tags": ["a"]}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left


def test_stale_temp_files_of_a_killed_write_are_removed_and_nothing_else(tmp_path):
    path = tmp_path / "checkpoint.pt"
    ck.save_checkpoint(path, {"step": 1})
    stale = [tmp_path / ".checkpoint.pt.a1b2.tmp", tmp_path / ".checkpoint.pt.zz.tmp"]
    kept = [tmp_path / ".config.json.a1b2.tmp", tmp_path / "checkpoint.pt.tmp", path]
    for file in stale + kept[:2]:
        file.write_bytes(b"partial")
    assert sorted(ck.remove_stale_temp_files(path)) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    assert ck.load_checkpoint(path)["step"] == 1


def test_failure_mid_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ck.save_checkpoint(path, {"step": 1})
    before = path.read_bytes()

    def broken_save(obj, handle):
        handle.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(path, {"step": 2})
    assert path.read_bytes() == before
    assert ck.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


class _Payload:
    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_a_pickle_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    payload = _Payload()
    payload.target = str(marker)
    evil = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "version": ck.VERSION, "x": payload}, evil)
    with pytest.raises(ValueError, match="not a contrastkit checkpoint"):
        ck.load_checkpoint(evil)
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(ValueError, match="not a contrastkit checkpoint"):
        ck.load_checkpoint(raw)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage" * 10, "truncated", "foreign", "wrong-version"],
)
def test_corrupted_or_foreign_files_raise_value_error(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    if content == "truncated":
        ck.save_checkpoint(path, {"model": {"w": torch.randn(100)}})
        path.write_bytes(path.read_bytes()[:200])
    elif content == "foreign":
        torch.save({"state_dict": {"w": torch.ones(1)}}, path)
    elif content == "wrong-version":
        torch.save({"format": ck.FORMAT, "version": 99}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="not a contrastkit checkpoint"):
        ck.load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        ck.load_checkpoint(tmp_path / "nope.pt")

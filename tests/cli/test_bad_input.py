"""Bad command-line input: exit code 2, one line naming the argument, no traceback, no files.

Each case runs ``contrastkit`` in this process from an empty working folder; after it, the
folder must still be empty (nothing written, not even a run folder) and stderr must hold one
line. Two cases run as real processes, where logging and Python's own traceback printing are
live. Recipes are written next to the folder, outside it.
"""

import os
import re
import subprocess
import sys

import pytest

from contrastkit.cli import main

TRAIN = ["train", "--data", "toy", "--steps", "2", "--out", "run"]

TOML_CASES = {
    "method_options = 3": "method_options must be a table/dict, got 3",
    'seed = "abc"': "seed must be an integer, got 'abc'",
    "device = 0": "device must be auto, cpu, cuda, cuda:N or mps, got 0",
    'eval = "no"': "eval must be true or false, got 'no'",
    "input_shape = [1, 2, 3.5]": "input_shape must be a list of integers",
    "input_shape = [3, 64, 64]": "input_shape \\[3, 64, 64\\] does not match the samples of toy",
    "warmup_epochs = inf": "warmup_epochs must be a finite number",
    'method = "simclr"\nbogus = 1': "unknown key\\(s\\) \\['bogus'\\]",
}

FLAG_CASES = [
    (["--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--set", "hidden_dim=1000000000000000"], "do not fit in memory.*hidden_dim"),
    (["--set", "temperature=Infinity"], "temperature must be a finite number > 0"),
    (["--set", "views.num_views=1"], "got 1; its view recipe must make 2 views.*num_views"),
    (["--set", "views.std=NaN"], "std"),
    (["--warmup-epochs", "inf"], "warmup_epochs must be a finite number >= 0, got inf"),
    (["--dist-timeout", "0"], "dist_timeout must be a positive number"),
    (["--batch-size", "0"], "batch_size must be"),
    (["--seed", "100000000000000000000000"], "seed must be an integer from 0 to 2\\*\\*63 - 1"),
    (["--seed", "-1"], "seed must be an integer from 0 to 2\\*\\*63 - 1, got -1"),
    (["--method", "nope"], "unknown method 'nope'"),
    (["--data", "folder:/nonexistent/photos"], "does not exist"),
]


def _exit_2_one_line(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err and ": error: " in lines[0]
    return lines[0]


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """An empty working folder; the test fails if anything appears in it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    assert sorted(os.listdir(cwd)) == [], "a bad input wrote files"


@pytest.mark.parametrize(("line", "message"), TOML_CASES.items(), ids=list(TOML_CASES))
def test_bad_recipe_values(empty_cwd, capsys, line, message):
    recipe = empty_cwd.parent / "recipe.toml"
    recipe.write_text(line + "\n")
    error = _exit_2_one_line(capsys, [*TRAIN, "--config", str(recipe)])
    assert re.search(message, error), error
    if "does not match" not in message:  # checked with the data, after the recipe was read
        assert str(recipe) in error


@pytest.mark.parametrize(("argv", "message"), FLAG_CASES, ids=[" ".join(a) for a, _ in FLAG_CASES])
def test_bad_flags(empty_cwd, capsys, argv, message):
    error = _exit_2_one_line(capsys, [*TRAIN, *argv])
    assert re.search(message, error), error


def test_embed_keeps_an_existing_out_file(toy_run, empty_cwd, capsys):
    existing = empty_cwd.parent / "features.npy"
    existing.write_bytes(b"mine")
    error = _exit_2_one_line(
        capsys, ["embed", str(toy_run), "--data", "toy", "--out", str(existing)]
    )
    assert "--overwrite" in error and existing.read_bytes() == b"mine"


def test_attention_refuses_an_out_folder_that_does_not_exist(toy_run, empty_cwd, capsys):
    error = _exit_2_one_line(
        capsys, ["attention", str(toy_run), "--sample", "0", "--out", "/nonexistent/folder/a.png"]
    )
    assert "a.png" in error or "vit" in error.lower()
    assert not os.path.exists("/nonexistent/folder")


def test_attention_refuses_an_out_file_that_is_not_a_png(toy_run, empty_cwd, capsys):
    error = _exit_2_one_line(capsys, ["attention", str(toy_run), "--sample", "0", "--out", "a.txt"])
    assert "--out a.txt" in error and ".png" in error


def test_resume_refuses_a_setting_that_changes_the_run(toy_run, empty_cwd, capsys):
    error = _exit_2_one_line(capsys, ["train", "--resume", str(toy_run), "--seed", "3"])
    assert "drop --seed" in error


@pytest.mark.parametrize(
    "argv",
    [
        [*TRAIN, "--set", "views.num_views=1"],
        ["train", "--data", "toy", "--out", "run", "--lr", "nan"],
    ],
    ids=["views", "lr"],
)
def test_a_real_process_prints_one_line_and_no_traceback(tmp_path, argv):
    result = subprocess.run(
        [sys.executable, "-m", "contrastkit", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert os.listdir(tmp_path) == []

"""``contrastkit train``: real output, and every bad input as one stderr line with exit code 2."""

import hashlib
import math

import pytest
import torch

from contrastkit.cli import main
from contrastkit.methods import SimCLR

pytestmark = pytest.mark.slow


def _files(folder) -> dict:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


def _one_line_error(capsys, argv, code=2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("contrastkit train: error: ")
    return lines[0]


def test_toy_run_prints_first_loss_bound_and_before_after_table(toy_run, capsys):
    out = capsys.readouterr().out  # the session fixture may have printed already
    main(["train", "--data", "toy", "--steps", "3", "--out", str(toy_run.parent / "again")])
    out = capsys.readouterr().out
    assert f"log(2N-1) = log(31) = {math.log(31):.3f}" in out
    assert "info_nce_bound(K=30)" in out
    for row in ("kNN accuracy (k=20)", "linear-probe accuracy", "same-label cosine"):
        assert row in out
    assert "different-label cosine" in out and "separation gap" in out
    assert "raw input" in out and "random init" in out and "trained h" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "simclrr"], "unknown method 'simclrr'; expected one of: .*simclr"),
        (["--data", "toyy"], "unknown dataset 'toyy'.*expected one of: .*digits.*toy"),
        (["--backbone", "resnet9"], "unknown backbone 'resnet9'; expected one of: .*mlp"),
        (["--data", "folder:/nonexistent/photos"], "does not exist"),
        (["--batch-size", "101"], "--batch-size 101 is larger than the dataset \\(100 samples"),
        (["--batch-size", "1"], "batch_size must be at least 2"),
        (["--epochs", "0"], "epochs must be a positive integer, got 0"),
        (["--epochs", "-2"], "epochs must be a positive integer, got -2"),
        (["--steps", "0"], "steps must be a positive integer"),
        (["--lr", "0"], "lr must be a positive number, got 0.0"),
        (["--lr=-1e-3"], "lr must be a positive number"),
        (["--temperature", "0"], "temperature must be a positive number"),
        (["--temperature", "-0.5"], "temperature must be a positive number"),
        (["--set", "widthh=3"], "has no option.*widthh"),
        # 3.2 PB of weights: more than any address space holds, so refused even with overcommit
        (["--set", "hidden_dim=100000000000000"], "weights do not fit in memory.*hidden_dim=1"),
        (["--set", "temperature=Infinity"], "temperature must be a finite number > 0, got inf"),
        (["--warmup-epochs", "inf"], "warmup_epochs must be a finite number >= 0, got inf"),
        (["--lr", "nan"], "lr must be a positive number, got nan"),
        (["--config", "/nonexistent/recipe.toml"], "no such file"),
        (["--view-pipeline", "fast"], "unknown view_pipeline 'fast'; expected one of: auto"),
        (["--view-pipeline", "batched"], "no batched views for recipe 'pair' on dataset 'toy'"),
        (
            ["--method", "moco", "--batch-size", "16", "--set", "queue_size=40"],
            "queue_size 40 is not a multiple of the 16 keys added per step.*queue_size=32",
        ),
    ],
)
def test_bad_settings_one_line_exit_2_and_no_folder(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    base = ["train", "--data", "toy", "--steps", "2", "--out", str(out)]
    line = _one_line_error(capsys, base + argv)
    assert pytest.importorskip("re").search(message, line), line
    assert not out.exists()


def test_empty_image_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _one_line_error(
        capsys, ["train", "--data", f"folder:{tmp_path / 'empty'}", "--out", str(tmp_path / "run")]
    )
    assert not (tmp_path / "run").exists()


def test_existing_run_folder_is_refused_and_left_intact(toy_run, capsys):
    before = _files(toy_run)
    line = _one_line_error(
        capsys, ["train", "--data", "toy", "--steps", "2", "--out", str(toy_run)]
    )
    assert "already exists" in line and "--resume" in line and "--overwrite" in line
    assert _files(toy_run) == before


def test_overwrite_replaces_a_run_but_never_a_foreign_folder(tmp_path, capsys):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"not a run")
    argv = ["train", "--data", "toy", "--steps", "2", "--no-eval", "--quiet"]
    line = _one_line_error(capsys, [*argv, "--out", str(foreign), "--overwrite"])
    assert "not a contrastkit run" in line and (foreign / "cat.jpg").exists()
    run = tmp_path / "run"
    assert main([*argv, "--out", str(run)]) == 0
    assert main([*argv, "--out", str(run), "--overwrite", "--seed", "3"]) == 0
    assert '"seed": 3' in (run / "config.json").read_text()


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = _one_line_error(capsys, ["train", "--data", "toy", "--out", str(blocker / "run")])
    assert "not a writable folder" in line


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "missing"])
def test_resume_with_a_bad_checkpoint(toy_run, tmp_path, capsys, damage):
    run = tmp_path / "copy"
    run.mkdir()
    for p in toy_run.iterdir():
        (run / p.name).write_bytes(p.read_bytes())
    checkpoint = run / "checkpoint.pt"
    if damage == "garbage":
        checkpoint.write_bytes(b"\x00" * 100)
    elif damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:500])
    elif damage == "foreign":
        torch.save({"state_dict": {}}, checkpoint)
    else:
        checkpoint.unlink()
    before = _files(run)
    line = _one_line_error(capsys, ["train", "--resume", str(run)])
    assert "not a contrastkit checkpoint" in line
    assert _files(run) == before


def test_resume_refuses_new_settings_and_missing_folders(toy_run, tmp_path, capsys):
    line = _one_line_error(capsys, ["train", "--resume", str(toy_run), "--batch-size", "8"])
    assert "drop --batch-size" in line and "--lr" in line  # names what may change
    line = _one_line_error(capsys, ["train", "--resume", str(tmp_path / "nope")])
    assert "nope" in line


def test_diverged_training_exits_1_naming_step_and_checkpoint(tmp_path, capsys, monkeypatch):
    original = SimCLR.training_step
    calls = []

    def nan_at_step_five(self, views):
        out = original(self, views)
        if torch.is_grad_enabled():  # not the no-grad preflight step before training
            calls.append(1)
        return {**out, "loss": out["loss"] * float("nan")} if len(calls) == 5 else out

    monkeypatch.setattr(SimCLR, "training_step", nan_at_step_five)
    run = tmp_path / "run"
    argv = ["train", "--data", "toy", "--steps", "8", "--checkpoint-every", "3", "--out", str(run)]
    line = _one_line_error(capsys, [*argv, "--quiet"], code=1)  # no progress lines off a TTY
    assert "loss is nan at step 5" in line and f"{run / 'checkpoint.pt'} (step 3)" in line


def test_help_documents_every_flag_with_its_default(capsys):
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--method", "--data", "--backbone", "--epochs", "--steps", "--batch-size"):
        assert flag in text
    for flag in ("--lr", "--temperature", "--seed", "--device", "--out"):
        assert flag in text
    assert text.count("(default:") >= 12


def test_help_defaults_come_from_the_dataset_tables(capsys, monkeypatch):
    from contrastkit.training import config

    monkeypatch.setitem(config.DATA_DEFAULTS["toy"], "batch_size", 24)
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 256; toy 24)" in text  # --batch-size: global, then toy's
    assert "(default: 40 on digits; otherwise 100)" in text  # --epochs
    assert "(default: none; toy 100)" in text  # --steps


def test_flags_beat_the_recipe_and_one_half_of_a_setting_drops_the_other(tmp_path):
    from contrastkit.cli import build_parser
    from contrastkit.cli.train import build_config

    recipe = tmp_path / "r.toml"
    recipe.write_text('data = "toy"\nsteps = 5\nwarmup_steps = 2\nlr = 0.1\n')
    argv = ["train", "--config", str(recipe), "--epochs", "3", "--warmup-epochs", "1"]
    argv += ["--preset", "paper"]  # no built-in recipe under it (tests/training/test_presets.py)
    config = build_config(build_parser().parse_args([*argv, "--no-eval", "--set", "a=1"]))
    assert (config.epochs, config.steps, config.warmup_epochs, config.warmup_steps) == (
        3,
        None,
        1,
        None,
    )
    assert config.lr == 0.1 and config.eval is False and config.method_options == {"a": 1}
    config = build_config(build_parser().parse_args([*argv, "--steps", "7", "--quiet"]))
    assert (config.epochs, config.steps, config.progress) == (3, 7, False)


def test_resume_passes_only_the_settings_that_do_not_change_the_result(monkeypatch, capsys):
    from contrastkit.training import trainer

    calls = []

    def resume(run_dir, on_start=None, **overrides):  # on_start prints the run folder
        calls.append((run_dir, overrides))
        raise ValueError("stop here")

    monkeypatch.setattr(trainer, "resume", resume)
    argv = ["train", "--resume", "r", "--num-workers", "2", "--no-eval", "--device", "cpu"]
    assert "stop here" in _one_line_error(capsys, argv)
    assert calls == [("r", {"device": "cpu", "num_workers": 2, "eval": False})]
    line = _one_line_error(capsys, ["train", "--resume", "r", "--seed", "1", "--set", "a=1"])
    assert line.endswith("drop --seed --set")

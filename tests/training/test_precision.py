"""The step's number format: what --amp auto and --memory-format auto choose, and both train."""

import json

import pytest
import torch

from contrastkit.training.config import TrainConfig
from contrastkit.training.precision import (
    auto_amp,
    cpu_bf16_flags,
    describe_precision,
    memory_format_of,
    resolve_precision,
)
from contrastkit.training.state import amp_dtype
from contrastkit.training.trainer import train

CPU = torch.device("cpu")
WITH_BF16 = "flags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n"
WITH_AMX = "flags\t\t: fpu sse avx512f amx_tile amx_bf16 amx_int8\n"
WITHOUT = "flags\t\t: fpu sse avx2 avx512f avx512bw\n"


def test_bf16_flags_are_read_from_cpuinfo():
    assert cpu_bf16_flags(WITH_BF16) == ["avx512_bf16"]
    assert cpu_bf16_flags(WITH_AMX) == ["amx_bf16"]
    assert cpu_bf16_flags(WITHOUT) == []
    assert cpu_bf16_flags("") == []


@pytest.mark.parametrize(
    ("cpuinfo", "expected"), [(WITH_BF16, "bf16"), (WITH_AMX, "bf16"), (WITHOUT, "off")]
)
def test_auto_picks_bf16_only_on_a_cpu_with_bf16_instructions(cpuinfo, expected):
    assert auto_amp(CPU, cpuinfo) == expected
    assert auto_amp(torch.device("mps"), WITH_BF16) == "off"


def test_auto_resolves_to_bf16_with_channels_last_or_float32_contiguous():
    assert resolve_precision("auto", "auto", CPU, cpuinfo=WITH_BF16) == ("bf16", "channels_last")
    assert resolve_precision("auto", "auto", CPU, cpuinfo=WITHOUT) == ("off", "contiguous")
    # points (the toy clusters) stay in float32 whatever the CPU
    assert resolve_precision("auto", "auto", CPU, False, WITH_BF16) == ("off", "contiguous")


def test_what_the_user_sets_is_kept():
    assert resolve_precision("off", "auto", CPU, cpuinfo=WITH_BF16) == ("off", "contiguous")
    assert resolve_precision("bf16", "contiguous", CPU, cpuinfo=WITHOUT) == ("bf16", "contiguous")
    assert resolve_precision("off", "channels_last", CPU) == ("off", "channels_last")


def test_amp_dtype_and_memory_format_of_the_resolved_names():
    assert amp_dtype("off", CPU) is None
    assert amp_dtype("bf16", CPU) == torch.bfloat16
    assert amp_dtype("fp16", CPU) == torch.float16
    assert memory_format_of("channels_last") == torch.channels_last
    assert memory_format_of("contiguous") == torch.contiguous_format


def test_the_log_line_says_the_format_and_how_to_turn_it_off():
    line = describe_precision("bf16", "channels_last", CPU)
    assert "bf16 autocast" in line and "channels_last" in line and "--amp off" in line
    assert describe_precision("off", "contiguous", CPU).startswith("precision: float32")


def run(tmp_path, name, **overrides):
    values = {
        "data": "shapes",
        "method": "simclr",
        "batch_size": 16,
        "steps": 3,
        "log_every": 1,
        "backbone_options": {"width": 8},
        "out": str(tmp_path / name),
        "progress": False,
        "eval": False,
        "eval_every": 0,
    }
    return train(TrainConfig(**{**values, **overrides}))


@pytest.mark.parametrize(
    ("amp", "memory_format"), [("off", "contiguous"), ("bf16", "channels_last")]
)
def test_both_number_formats_train_and_are_recorded(tmp_path, amp, memory_format, caplog):
    with caplog.at_level("INFO", logger="contrastkit.training.trainer"):
        run_dir = run(tmp_path, amp, amp=amp, memory_format=memory_format)
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["amp"], saved["memory_format"]) == (amp, memory_format)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r.get("event") == "step"]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert any(r.getMessage().startswith("precision: ") for r in caplog.records)


def test_auto_is_recorded_as_what_this_machine_chose(tmp_path):
    run_dir = run(tmp_path, "auto")
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["amp"], saved["memory_format"]) == resolve_precision("auto", "auto", CPU)

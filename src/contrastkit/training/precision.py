"""The step's number format: bf16 autocast and channels_last where they are fast, fp32 elsewhere.

``--amp auto`` picks, for image data, bf16 autocast on a CPU with bf16 instructions
(``avx512_bf16`` or AMX, read from ``/proc/cpuinfo``) and on CUDA where the GPU supports it,
fp16 on older CUDA GPUs and full precision everywhere else (a CPU without bf16 instructions
emulates it, slower than fp32). ``--memory-format auto`` stores the convolution weights
channels_last whenever autocast is on (the convolutions then run in NHWC, which oneDNN and
cuDNN prefer; the inputs follow the weights). ``benchmarks/cpu_step.py`` measures each on this
project's CPU. The losses always run in float32 (``contrastkit.losses.checks.no_autocast``), so
only the network's activations are rounded. ``resolve_precision`` turns ``auto`` into what is
used, so ``config.json`` records it and a resumed run keeps it.
"""

from __future__ import annotations

from pathlib import Path

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """Return the bf16 instruction flags of this CPU (of ``cpuinfo``'s text when given).

    Args:
        cpuinfo: the text of ``/proc/cpuinfo``; None reads it (no file: no flags).
    """
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.exists() else ""
    words = set(cpuinfo.split())
    return [flag for flag in BF16_CPU_FLAGS if flag in words]


def auto_amp(device: torch.device, cpuinfo: str | None = None) -> str:
    """Return what ``--amp auto`` means on ``device``: "bf16", "fp16" or "off"."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_bf16_flags(cpuinfo):
        return "bf16"
    return "off"


def resolve_precision(
    amp: str,
    memory_format: str,
    device: torch.device,
    images: bool = True,
    cpuinfo: str | None = None,
) -> tuple[str, str]:
    """Return ``(amp, memory_format)`` with "auto" replaced by what ``device`` runs fastest.

    Args:
        amp: "auto", "off", "bf16" or "fp16" (``--amp``).
        memory_format: "auto", "channels_last" or "contiguous" (``--memory-format``).
        device: the training device.
        images: the samples are images. Points (the 2-D toy clusters) stay in float32 under
            "auto": their networks are too small to gain, and the toy experiment's numbers
            are about precision-free geometry.
        cpuinfo: the text of ``/proc/cpuinfo`` (None: this machine's).
    """
    if amp == "auto":
        amp = auto_amp(device, cpuinfo) if images else "off"
    if memory_format == "auto":
        memory_format = "contiguous" if amp == "off" else "channels_last"
    return amp, memory_format


def describe_precision(amp: str, memory_format: str, device: torch.device) -> str:
    """Return the log line that says the step's number format and how to change it."""
    number = "float32" if amp == "off" else f"{amp} autocast (losses in float32)"
    why = ""
    if device.type == "cpu" and amp == "bf16":
        flags = cpu_bf16_flags()
        why = f"; this CPU has {', '.join(flags)}"
        if not flags:
            why = "; this CPU has no bf16 unit (emulated: slower than float32)"
    undo = "" if amp == "off" else ", --amp off for float32"
    return f"precision: {number}, {memory_format} weights on {device.type}{why}{undo}"


def memory_format_of(name: str) -> torch.memory_format:
    """Return the torch memory format of ``--memory-format`` "channels_last" or "contiguous"."""
    return torch.channels_last if name == "channels_last" else torch.contiguous_format


__all__ = [
    "BF16_CPU_FLAGS",
    "auto_amp",
    "cpu_bf16_flags",
    "describe_precision",
    "memory_format_of",
    "resolve_precision",
]

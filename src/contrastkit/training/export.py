"""Export a trained encoder (the backbone f alone) for use in any PyTorch code.

The file holds ``method.backbone.state_dict()`` under the backbone's own module names, nothing
else, so it loads with ``strict=True`` into:

- the matching torchvision model for ``resnet18`` / ``resnet50`` (contrastkit's ResNet *is*
  torchvision's with ``fc = nn.Identity()``; with the CIFAR stem, the default at <= 64 px, also
  replace ``conv1`` by a 3x3 stride-1 conv and ``maxpool`` by ``nn.Identity()``: the metadata
  records which as the option ``cifar_stem``);
- the matching timm model for ``timm:NAME`` (``timm.create_model(NAME, num_classes=0)``);
- contrastkit's own backbone, ``build_backbone(name, **options)``, for every name;
  ``load_encoder(path)`` does that from the metadata a ``.safetensors`` file carries.

``.safetensors`` files carry the backbone name and options as metadata; ``.pt`` files are a plain
state dict readable with ``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

from contrastkit.checkpoint import atomic_write
from contrastkit.models.backbones import build_backbone
from contrastkit.training.runs import load_run

logger = logging.getLogger(__name__)

FORMATS = (".safetensors", ".pt")
METADATA_KEY = "contrastkit"


def encoder_state(backbone: nn.Module) -> dict[str, Tensor]:
    """Return the backbone's state dict as independent, contiguous CPU tensors."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in backbone.state_dict().items()}


def backbone_spec(config, state: dict[str, Tensor] | None = None) -> dict[str, Any]:
    """Return the arguments that rebuild a run's backbone with ``build_backbone``.

    Args:
        config: a resolved ``TrainConfig`` (``input_shape`` filled in).
        state: the backbone's tensors; for a ResNet its stem is then recorded as the option
            ``cifar_stem`` (a 3x3 ``conv1``: True), which the image size otherwise decides unseen.
    """
    shape = list(config.input_shape)
    image = len(shape) == 3
    options = dict(config.backbone_options)
    if str(config.backbone).startswith("resnet") and state is not None and "conv1.weight" in state:
        options.setdefault("cifar_stem", state["conv1.weight"].shape[-1] == 3)  # (64, C, k, k)
    return {
        "name": config.backbone,
        "in_channels": shape[0] if image else 1,
        "image_size": shape[-1] if image else 1,
        "input_dim": int(torch.Size(shape).numel()),
        "options": options,
    }


def describe_spec(spec: dict[str, Any]) -> str:
    """Return one line naming the backbone, its input and every option (the stem included)."""
    if spec["options"].get("cifar_stem") is True:
        stem = ", CIFAR stem (3x3 stride-1 conv1, no max-pool)"
    elif spec["options"].get("cifar_stem") is False:
        stem = ", ImageNet stem (7x7 stride-2 conv1 and max-pool)"
    else:
        stem = ""
    size = f"{spec['in_channels']}x{spec['image_size']}x{spec['image_size']}"
    return f"backbone {spec['name']}{stem}, input {size}, options {spec['options']}"


def write_encoder(state: dict[str, Tensor], spec: dict[str, Any], out: str | os.PathLike) -> Path:
    """Write a backbone's tensors to ``out`` atomically, as ``.safetensors`` or ``.pt``.

    Args:
        state: ``encoder_state(backbone)``, under the backbone's own key names.
        spec: ``backbone_spec(config, state)``, stored as metadata in a ``.safetensors`` file
            (a ``.pt`` file is the plain state dict).
        out: the file; its suffix picks the format.
    """
    out = Path(out).expanduser()
    if out.suffix == ".safetensors":
        data = safetensors_bytes(state, metadata={METADATA_KEY: json.dumps(spec)})
        atomic_write(out, lambda handle: handle.write(data))
    else:
        atomic_write(out, lambda handle: torch.save(state, handle))
    logger.debug("wrote %d tensors of backbone %s to %s", len(state), spec["name"], out)
    return out


def export_encoder(
    run_dir: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write the trained backbone of ``run_dir`` to ``out`` (``.safetensors`` or ``.pt``).

    The file is written to a temporary name and renamed, so ``out`` is either absent or whole.

    Args:
        run_dir: a run folder written by ``contrastkit train``.
        out: the file to write; its suffix picks the format.
        overwrite: replace ``out`` when it exists.

    Returns:
        The path written.

    Raises:
        ValueError: not a run folder, an unknown suffix, or ``out`` exists without overwrite.
        OSError: the destination folder is missing or not writable.
    """
    out = Path(out).expanduser()
    if out.suffix not in FORMATS:
        raise ValueError(
            f"--out {out}: unknown format {out.suffix or '(no suffix)'!r}; "
            f"expected a file ending in {' or '.join(FORMATS)}"
        )
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; expected a file name ending in {out.suffix}")
    if out.exists() and not overwrite:
        raise ValueError(f"--out {out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--out {out}: the folder {out.parent} does not exist")
    method, config = load_run(run_dir)
    state = encoder_state(method.backbone)
    return write_encoder(state, backbone_spec(config, state), out)


def read_encoder_spec(path: str | os.PathLike) -> dict[str, Any]:
    """Return the backbone spec stored in an exported ``.safetensors`` file.

    Raises:
        ValueError: not a safetensors file written by ``export_encoder``.
    """
    path = Path(path).expanduser()
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable .safetensors file ({err})") from err
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path}: no contrastkit metadata; was it written by contrastkit export?")
    return json.loads(metadata[METADATA_KEY])


def load_encoder(path: str | os.PathLike) -> nn.Module:
    """Rebuild contrastkit's backbone from an exported ``.safetensors`` file (strict load).

    Returns:
        The backbone in eval mode, mapping (B, ...) -> (B, F) with ``.feature_dim`` = F.

    Raises:
        ValueError: the file is not a contrastkit export or does not match its metadata.
    """
    spec = read_encoder_spec(path)
    backbone = build_backbone(
        spec["name"],
        in_channels=spec["in_channels"],
        image_size=spec["image_size"],
        input_dim=spec["input_dim"],
        **spec["options"],
    )
    backbone.load_state_dict(load_file(str(Path(path).expanduser())), strict=True)
    return backbone.eval()


__all__ = [
    "FORMATS",
    "backbone_spec",
    "describe_spec",
    "encoder_state",
    "export_encoder",
    "load_encoder",
    "read_encoder_spec",
    "write_encoder",
]

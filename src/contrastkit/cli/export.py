"""``contrastkit export``: write a run's trained backbone alone, ready for downstream code."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="write a run's trained encoder (backbone only) to .safetensors or .pt",
        description=(
            "Write the backbone f of a trained run alone (no heads, no teacher, no optimizer). "
            "Its keys load with strict=True into the matching torchvision model (resnet18/50 "
            "with fc = nn.Identity(), plus the CIFAR stem when the run used one), timm model "
            "(timm:NAME with num_classes=0) or contrastkit.models.backbones.build_backbone(...). "
            ".safetensors also records the backbone name and options "
            "(contrastkit.training.export.load_encoder rebuilds it); .pt is a plain state dict."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train")
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="encoder.safetensors (recommended: no pickle, carries metadata) or encoder.pt",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace FILE when it already exists"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the encoder and say where it went; return the exit code."""
    import torch

    from contrastkit.training import export
    from contrastkit.training.runs import read_config

    path = export.export_encoder(args.run_dir, args.out, overwrite=args.overwrite)
    if path.suffix == ".safetensors":
        spec = export.read_encoder_spec(path)
    else:  # a plain state dict: the stem is read off its conv1
        spec = export.backbone_spec(read_config(args.run_dir), torch.load(path, weights_only=True))
    print(f"wrote {path} ({export.describe_spec(spec)})")
    return 0

"""``contrastkit embed``: write the representations h of a dataset as a .npy file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``embed`` subcommand."""
    parser = subparsers.add_parser(
        "embed",
        help="write the representations h of a dataset to FILE.npy",
        description=(
            "Embed every sample of a dataset with RUN_DIR's encoder and save h (never the "
            "projection z) as a float32 array of shape (N, F). The data must have the shape the "
            "run was trained on. Labels, when the data has them, go to FILE.labels.npy."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train")
    parser.add_argument("--data", required=True, help="NAME or NAME:PATH, e.g. digits")
    parser.add_argument("--out", required=True, metavar="FILE.npy", help="where to write h")
    parser.add_argument(
        "--split", default="test", help="train or test (default: test, the held-out split)"
    )
    parser.add_argument("--batch-size", type=int, default=512, help="(default: 512)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default: auto)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace FILE.npy (and its labels) if it exists"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Embed the dataset and write the arrays; return the exit code."""
    import io

    import numpy as np

    from contrastkit.checkpoint import atomic_write
    from contrastkit.data import build_dataset
    from contrastkit.evaluation.metrics import embed_dataset
    from contrastkit.training.runs import load_run
    from contrastkit.training.trainer import resolve_device

    out = Path(args.out)
    if out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {args.out!r}")
    if args.split not in ("train", "test"):
        raise ValueError(f"--split must be train or test, got {args.split!r}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")
    if out.exists() and not args.overwrite:
        raise ValueError(f"--out {out} already exists; pass --overwrite to replace it")
    device = resolve_device(args.device)
    method, config = load_run(args.run_dir, device=str(device))
    dataset = build_dataset(args.data, train=args.split == "train", seed=config.seed)
    shape = [int(s) for s in dataset.input_shape]
    if shape != list(config.input_shape):
        raise ValueError(
            f"--data {args.data} has samples of shape {tuple(shape)}, but the run was trained on "
            f"{tuple(config.input_shape)}"
        )
    feats, labels = embed_dataset(method, dataset, args.batch_size, str(device))

    def writer(array):
        buffer = io.BytesIO()
        np.save(buffer, array)
        return lambda handle: handle.write(buffer.getvalue())

    atomic_write(out, writer(feats.numpy().astype(np.float32)))
    print(f"wrote h of {len(dataset)} samples, shape {tuple(feats.shape)}, to {out}")
    if bool((labels >= 0).any()):
        label_path = out.with_suffix(".labels.npy")
        atomic_write(label_path, writer(labels.numpy()))
        print(f"wrote labels to {label_path}")
    return 0

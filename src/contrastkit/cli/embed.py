"""``contrastkit embed``: write the representations h of a dataset, with what each row is.

Two formats, picked by the suffix of ``--out``:

- ``FILE.npz`` (any ``--split``, the only one for ``--split all``): ``embeddings`` (N, F)
  float32, ``labels`` (N,) int64 (-1 where unlabelled), ``split`` (N,) "train" or "test",
  ``index`` (N,) int64 (the row's position in its split), ``class_names`` (C,) (empty when
  unlabelled) and, for ``folder:PATH`` data, ``paths`` (N,): each image's path relative to PATH.
- ``FILE.npy``: h of one split alone, (N, F) float32, and its labels in ``FILE.labels.npy``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SPLITS = ("train", "test", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``embed`` subcommand."""
    parser = subparsers.add_parser(
        "embed",
        help="write the representations h of a dataset to FILE.npz (or FILE.npy)",
        description=(
            "Embed every sample of a dataset with RUN_DIR's encoder and save h (never the "
            "projection z) as float32 arrays of shape (N, F). The data must have the shape the "
            "run was trained on. FILE.npz holds embeddings, labels, split, index, class_names "
            "and, for folder data, paths (each image's path in the folder); FILE.npy holds h "
            "alone, with labels, when the data has them, in FILE.labels.npy."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train")
    parser.add_argument("--data", required=True, help="NAME or NAME:PATH, e.g. digits")
    parser.add_argument(
        "--out", required=True, metavar="FILE", help="FILE.npz (h with names) or FILE.npy (h only)"
    )
    parser.add_argument(
        "--split",
        default="test",
        help="train, test or all (both, in that order; .npz only) (default: test, the held-out "
        "split). A folder's class of a single image is in both splits",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="samples per forward pass (default: the run's eval_batch_size, 512 unless set, at "
        "most 64 for full-resolution photos)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default: auto)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace FILE (and its labels) if it exists"
    )
    parser.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> Path:
    """Return ``--out`` as a path once every flag is known to be usable.

    Raises:
        ValueError: naming the flag and the expected form.
    """
    out = Path(args.out)
    if out.suffix not in (".npz", ".npy"):
        raise ValueError(f"--out must end in .npz or .npy, got {args.out!r}")
    if args.split not in SPLITS:
        raise ValueError(f"--split must be train, test or all, got {args.split!r}")
    if args.split == "all" and out.suffix != ".npz":
        raise ValueError("--split all writes both splits with their names: use --out FILE.npz")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")
    if out.exists() and not args.overwrite:
        raise ValueError(f"--out {out} already exists; pass --overwrite to replace it")
    return out


def _writer(save, *args, **kwargs):
    """Return an ``atomic_write`` callback writing what ``save(buffer, ...)`` made in memory."""
    import io

    buffer = io.BytesIO()
    save(buffer, *args, **kwargs)
    return lambda handle: handle.write(buffer.getvalue())


def run(args: argparse.Namespace) -> int:
    """Embed the split(s) and write the arrays; return the exit code."""
    import numpy as np

    from contrastkit.checkpoint import atomic_write
    from contrastkit.data import build_dataset, image_size_for
    from contrastkit.evaluation.metrics import embed_dataset
    from contrastkit.training.runs import eval_batch_size, load_run
    from contrastkit.training.trainer import resolve_device

    out = _check_args(args)
    device = resolve_device(args.device)
    method, config = load_run(args.run_dir, device=str(device))
    splits = ("train", "test") if args.split == "all" else (args.split,)
    parts = []
    for split in splits:
        size = image_size_for(args.data, getattr(config, "image_size", None))
        dataset = build_dataset(
            args.data, train=split == "train", seed=config.seed, image_size=size
        )
        shape = [int(s) for s in dataset.input_shape]
        if shape != list(config.input_shape):
            raise ValueError(
                f"--data {args.data} has samples of shape {tuple(shape)}, but the run was "
                f"trained on {tuple(config.input_shape)}"
            )
        batch = args.batch_size or eval_batch_size(config, dataset)
        feats, labels = embed_dataset(method, dataset, batch, str(device))
        parts.append((split, dataset, feats.numpy().astype(np.float32), labels.numpy()))
    feats = np.concatenate([p[2] for p in parts])
    labels = np.concatenate([p[3] for p in parts])
    if out.suffix == ".npy":
        atomic_write(out, _writer(np.save, feats))
        print(f"wrote h of {len(feats)} {args.split} samples, shape {feats.shape}, to {out}")
        if bool((labels >= 0).any()):
            label_path = out.with_suffix(".labels.npy")
            atomic_write(label_path, _writer(np.save, labels))
            print(f"wrote labels to {label_path}")
        return 0
    arrays = {
        "embeddings": feats,
        "labels": labels,
        "split": np.array([split for split, ds, *_ in parts for _ in range(len(ds))]),
        "index": np.concatenate([np.arange(len(ds), dtype=np.int64) for _, ds, *_ in parts]),
        "class_names": np.array(getattr(parts[0][1], "class_names", None) or [], dtype=str),
    }
    if all(getattr(ds, "paths", None) is not None for _, ds, *_ in parts):
        arrays["paths"] = np.array([path for _, ds, *_ in parts for path in ds.paths], dtype=str)
    atomic_write(out, _writer(np.savez, **arrays))
    print(
        f"wrote h of {len(feats)} samples ({args.split}), shape {feats.shape}, with "
        f"{', '.join(k for k in arrays if k != 'embeddings')}, to {out}"
    )
    return 0

"""``contrastkit shard``: pack a folder of images into tar shards for ``--data shards:DIR``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``shard`` subcommand."""
    parser = subparsers.add_parser(
        "shard",
        help="pack folder:PATH into WebDataset tar shards (train with --data shards:DIR)",
        description=(
            "Pack the readable images of folder:PATH (its class sub-folders and its 80/20 split "
            "by file-name hash) into tar shards in the WebDataset layout: DIR/train-000000.tar "
            "... and DIR/test-000000.tar ..., each sample a {key}.jpg (the file's own bytes) "
            "and, with classes, a {key}.cls; DIR/meta.json names the classes. Under torchrun, "
            "each process of a run on --data shards:DIR reads only its own shards."
        ),
    )
    parser.add_argument("data", metavar="folder:PATH", help="the images to pack")
    parser.add_argument("--out", required=True, metavar="DIR", help="an empty or new folder")
    parser.add_argument(
        "--shard-size",
        type=int,
        default=1000,
        metavar="N",
        help="images per shard (default 1000); make at least as many shards as processes",
    )
    parser.add_argument("--seed", type=int, default=0, help="fixes the shuffled order (0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the shards and say what was written; return the exit code."""
    from contrastkit.data import parse_spec
    from contrastkit.data.shards import write_shards

    name, path = parse_spec(args.data)
    if name != "folder":
        raise ValueError(f"contrastkit shard packs folder:PATH data, got {args.data!r}")
    written = write_shards(path, args.out, args.shard_size, seed=args.seed)
    for split in ("train", "test"):
        print(
            f"{split}: {written['images'][split]} images in {len(written[split])} shard(s) "
            f"under {args.out}"
        )
    if written["skipped"]:
        print(f"skipped {written['skipped']} unreadable image file(s)")
    print(f"train on them with: contrastkit train --data shards:{args.out}")
    return 0

"""The ``contrastkit`` command line: parsing and friendly errors only, then the library.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser and
sets ``func(args) -> int``. User mistakes (``ValueError``, ``OSError``) become one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from contrastkit import __version__
from contrastkit.cli import attention as attention_cmd
from contrastkit.cli import demo as demo_cmd
from contrastkit.cli import embed as embed_cmd
from contrastkit.cli import eval as eval_cmd
from contrastkit.cli import export as export_cmd
from contrastkit.cli import train as train_cmd
from contrastkit.cli import zeroshot as zeroshot_cmd

SUBCOMMANDS = [train_cmd, eval_cmd, embed_cmd, attention_cmd, export_cmd, demo_cmd, zeroshot_cmd]

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="contrastkit",
        description="Learn representations without labels: train, evaluate, explore.",
    )
    parser.add_argument("--version", action="version", version=f"contrastkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as err:
        print(f"contrastkit {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"contrastkit {args.command}: interrupted", file=sys.stderr)
        return 130

"""The ``contrastkit`` command line: parsing and friendly errors only, then the library.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser and
sets ``func(args) -> int``. User mistakes (``ValueError``, ``OSError``) become one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing

from contrastkit import __version__
from contrastkit.cli import attention as attention_cmd
from contrastkit.cli import demo as demo_cmd
from contrastkit.cli import embed as embed_cmd
from contrastkit.cli import eval as eval_cmd
from contrastkit.cli import experiment as experiment_cmd
from contrastkit.cli import export as export_cmd
from contrastkit.cli import shard as shard_cmd
from contrastkit.cli import train as train_cmd
from contrastkit.cli import zeroshot as zeroshot_cmd
from contrastkit.training.malloc import keep_freed_memory

SUBCOMMANDS = [
    train_cmd,
    eval_cmd,
    embed_cmd,
    attention_cmd,
    export_cmd,
    demo_cmd,
    zeroshot_cmd,
    experiment_cmd,
    shard_cmd,
]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """A parser whose usage errors are one line (the subcommands' parsers are of this class)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = _Parser(
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error (one line, exit 2)
        return int(done.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keep_freed_memory()  # training and streaming evaluation reuse large buffers (see malloc)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as err:
        print(f"contrastkit {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"contrastkit {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(err: Exception) -> str:
    """Return the user's message of ``err`` on one line: an OSError as "PATH: reason"."""
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    else:
        text = str(err)
    return " ".join(text.split())

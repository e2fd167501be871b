"""Run the command line with ``python -m contrastkit``."""

from contrastkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

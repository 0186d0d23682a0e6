"""`python -m app [--host H] [--port P] [any `terse serve` flag]`: `terse serve` (app/cli.py), which
serves with app/server.py."""

from __future__ import annotations

import sys

from .cli import main as cli


def main(argv: list[str] | None = None) -> int:
    return cli(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

"""The `rsearch` command: a thin dispatcher over rsearch/commands/*.

Each command module exposes `register(subparsers)` (adds its parser and sets
`func`) so the CLI stays one screen long and commands stay independent.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rsearch import __version__
from rsearch.bounds import FieldError
from rsearch.errors import UserError, bounded

# Module names under rsearch.commands, in the order `--help` lists them.
COMMANDS = ("train", "tune", "cost", "dashboard", "analyze", "export")


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; keep its message on one line, in the wording of
    every other error: `--flag: expected ..., got ...` (argparse says `argument --flag: ...`)."""

    def error(self, message):  # noqa: D102
        message = " ".join(message.split()).removeprefix("argument ")
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rsearch",
        description="ResNet-RS training, scaling and regularization search on Ray Tune.",
    )
    parser.add_argument("--version", action="version", version=f"rsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"rsearch.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rsearch.commands.{name}":
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help / --version (0) and usage errors (2), as return codes
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"rsearch {args.command}: error: {bounded(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except FieldError as exc:
        # An edge that did not name the field's key or flag: still one line and exit 2, with the
        # field's own name, rather than a traceback.
        print(f"rsearch {args.command}: error: {bounded(str(exc))}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print(f"rsearch {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

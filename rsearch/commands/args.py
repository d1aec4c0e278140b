"""What every command shares: its parser, the argparse types, and the naming of flags.

Types of the fields in rsearch.bounds read that table (`field("resolution")`), so a flag
accepts exactly what the field does and says so in the one wording:

    rsearch cost: error: --resolution: expected an integer in [32, 1024] (...), got '16'

Inner code (TrainConfig, Recipe, the model registry) raises a FieldError naming the field;
`named_flags` turns it into the UserError naming the flag that set it.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rsearch.bounds import FIELDS, Bound, FieldError
from rsearch.errors import UserError


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's paragraphs and the examples' lines as the docstring has them."""


class _DefaultsFormatter(_Formatter, argparse.ArgumentDefaultsHelpFormatter):
    """The same, with each flag's default: where it has one (not None, not a switch's False)
    and its help does not already say it."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_command(subparsers, module: str, show_defaults: bool = False) -> argparse.ArgumentParser:
    """The parser of the command that `module` (rsearch.commands.<name>) implements, described
    by the module's docstring: its first paragraph, after "`rsearch <name>`: ", is the line
    `rsearch --help` lists; all of it, examples included, is `rsearch <name> --help` (with each
    flag's default when `show_defaults`). One text, so the two never drift apart."""
    name = module.rpartition(".")[2]
    # (python -OO strips docstrings: the command's name is then all its help)
    doc = inspect.cleandoc(sys.modules[module].__doc__ or f"`rsearch {name}`: {name}")
    summary = " ".join(doc.split("\n\n", 1)[0].split()).split(": ", 1)[1].rstrip(".")
    formatter = _DefaultsFormatter if show_defaults else _Formatter
    description = doc.split(": ", 1)[1]
    return subparsers.add_parser(
        name, help=summary, description=description, formatter_class=formatter
    )


def add_experiment(parser: argparse.ArgumentParser) -> None:
    """The EXPERIMENT argument of the commands that read one (analyze, dashboard)."""
    parser.add_argument(
        "experiment", metavar="EXPERIMENT", help="experiment folder (<storage>/<name>)"
    )


def bounded(bound: Bound, name: str) -> Callable[[str], Any]:
    """The argparse type of a value `bound` accepts (an int or a float, by its type)."""
    kind = int if bound.type == "int" else float

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not bound.accepts(value):
            raise argparse.ArgumentTypeError(f"expected {bound.expected()}, got {text!r}")
        return value

    convert.__name__ = name  # argparse's own messages name the type by it
    return convert


def field(name: str) -> Callable[[str], Any]:
    """The argparse type of a field of rsearch.bounds."""
    return bounded(FIELDS[name], name)


def integer(low: int, why: str = "") -> Callable[[str], int]:
    return bounded(Bound("int", low, why=why), "integer")


def number(low: float = 0, high: float | None = None, why: str = "") -> Callable[[str], float]:
    """A finite number in (low, high] (or > low without high)."""
    return bounded(Bound("float", low, high, low_open=True, why=why), "number")


def number_list(item: Bound, example: str) -> Callable[[str], list]:
    """Comma-separated values `item` accepts (batch sizes, latency budgets)."""
    kind = int if item.type == "int" else float

    def convert(text: str) -> list:
        try:
            values = [kind(part) for part in text.split(",")]
        except ValueError:
            values = []
        if not values or not all(item.accepts(v) for v in values):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated values, each {item.expected()} (e.g. {example}), "
                f"got {text!r}"
            )
        return values

    convert.__name__ = "list"
    return convert


@contextlib.contextmanager
def named_flags(flags: dict[str, str]) -> Iterator[None]:
    """Inside: a FieldError of field F becomes the UserError `flags[F]: expected ..., got ...`
    (a field not in `flags` is named as its flag would be: batch_size -> --batch-size)."""
    try:
        yield
    except FieldError as exc:
        flag = flags.get(exc.field, "--" + exc.field.replace("_", "-"))
        raise UserError(exc.named(flag)) from None

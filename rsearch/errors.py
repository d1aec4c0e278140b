"""User-facing errors: one line, exit code 2, raised before anything is written.

UserError is the edges' error: the space schema names the key path, a command names its
flag. Inner code (the dataclasses, the model registry) raises rsearch.bounds.FieldError, a
plain ValueError naming the field, which the edge translates (commands/args.named_flags).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class UserError(Exception):
    """Bad input from the user. The CLI prints `rsearch: error: <message>` and exits 2.

    The message must name the offending argument/field/key path and say what
    was expected, on one line.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # force one line


MAX_MESSAGE_CHARS = 500  # an error message never prints an unbounded value


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` cut in the middle to at most `limit` characters: both ends say what went wrong."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3 - 30
    return f"{text[:head]} ...({len(text) - head - tail:,} characters cut)... {text[-tail:]}"


@contextlib.contextmanager
def renamed(names: dict[str, str]) -> Iterator[None]:
    """Inside: a UserError that names `flag` (its message starts "flag:") names `names[flag]`
    instead. Code shared by two edges names one edge's flag (`rsearch train`'s --data-dir); the
    other edge says what its user wrote (a space's data.dir)."""
    try:
        yield
    except UserError as exc:
        flag, sep, rest = str(exc).partition(":")
        if not sep or flag not in names:
            raise
        raise UserError(f"{names[flag]}:{rest}") from None

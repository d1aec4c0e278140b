"""User-facing errors: one line, exit code 2, raised before anything is written.

UserError is the edges' error: the space schema names the key path, a command names its
flag. Inner code (the dataclasses, the model registry) raises rsearch.bounds.FieldError, a
plain ValueError naming the field, which the edge translates (commands/args.named_flags).
"""


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

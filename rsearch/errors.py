"""User-facing errors: one line, exit code 2, raised before anything is written."""


class UserError(Exception):
    """Bad input from the user. The CLI prints `rsearch: error: <message>` and exits 2.

    The message must name the offending argument/field/key path and say what
    was expected, on one line.
    """

    exit_code = 2
    MAX_CHARS = 500  # an error message never prints an unbounded value

    def __init__(self, message: str):
        text = " ".join(str(message).split())  # force one line
        if len(text) > self.MAX_CHARS:
            text = text[:self.MAX_CHARS - 25] + f" ... ({len(text):,} characters)"
        super().__init__(text)

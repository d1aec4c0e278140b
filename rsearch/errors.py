"""User-facing errors: one line, exit code 2, raised before anything is written."""


class UserError(Exception):
    """Bad input from the user. The CLI prints `rsearch: error: <message>` and exits 2.

    The message must name the offending argument/field/key path and say what
    was expected, on one line.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # force one line

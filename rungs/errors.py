"""User-facing errors.

A `UserError` is a mistake in what the user gave us (a missing file, a malformed row, an unknown
task name). The CLI prints its message as one line and exits non-zero, without a traceback, so
the message itself must name the file, line or value and say what was expected.
"""


class UserError(Exception):
    """Bad user input; the message is shown to the user as one line."""


class UnsafeExpression(ValueError):
    """Model text that the safe expression parser refuses (too long, too deep, a forbidden name, ...)."""


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C that a command caught to say how to continue; the CLI prints its message (one line,
    once) instead of its bare "interrupted"."""

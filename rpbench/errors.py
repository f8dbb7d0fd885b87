"""The one exception type that turns into a one-line message and exit code 2."""


class UsageError(ValueError):
    """Bad input from the user: unknown name, bad value, unusable path or device.

    The CLI prints ``error: <message>`` on one line and exits with code 2.  Raise it with a
    message that names the problem and the valid choices.
    """


def traceback_text(exc: BaseException) -> str:
    """An exception's whole traceback (as far as it travelled: a Dask worker's frames where the
    scheduler kept them), for the run folder's ``failures/``."""
    import traceback

    return "".join(traceback.format_exception(exc))


def error_text(exc: BaseException) -> str:
    """An exception as one line of at most 500 characters (the ``error`` column of a failed row)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]

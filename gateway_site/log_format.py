"""Log lines without what PostgreSQL quotes of a row it refused.

A refused row's error carries a DETAIL ("Failing row contains (…)", "Key (…)=(…) already
exists") that quotes its values: prompts, answers, end users. Any traceback of such an error
would put them in the logs, wherever it is logged from (a request's unexpected error, a periodic
job, a journal recovery). The formatter below writes every traceback with each database error's
primary message only; the rest of the traceback is unchanged.
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType

from uvicorn.logging import DefaultFormatter


def database_error_summary(error: BaseException) -> str | None:
    """`Type: primary message` for a database error (Django's carry psycopg's as their cause),
    None for any other error. The primary message is the error's own or, failing that, its
    cause's (a diag without one, e.g. a lost connection's, does not hide the cause's)."""
    diags = [
        d for d in (getattr(e, "diag", None) for e in (error, error.__cause__)) if d is not None
    ]
    if not diags:
        return None
    primary = next((m for d in diags if (m := getattr(d, "message_primary", None))), None)
    return f"{type(error).__name__}: {primary}" if primary else type(error).__name__


def _lines(error: BaseException, seen: set[int]) -> list[str]:
    seen.add(id(error))
    lines: list[str] = []
    cause, context = error.__cause__, error.__context__
    if cause is not None and id(cause) not in seen:
        lines += _lines(cause, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not error.__suppress_context__ and id(context) not in seen:
        lines += _lines(context, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if error.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(error.__traceback__)
    summary = database_error_summary(error)
    if summary is None:
        lines += traceback.format_exception_only(type(error), error)
    else:
        module = type(error).__module__
        lines.append(f"{module}.{summary} [its DETAIL left out of the logs]\n")
    return lines


class LogFormatter(logging.Formatter):
    """The gateway's log lines (settings.LOGGING)."""

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        error = ei[1]
        if error is None:
            return super().formatException(ei)
        return "".join(_lines(error, set())).rstrip("\n")


class ServerLogFormatter(LogFormatter, DefaultFormatter):
    """uvicorn's own log lines (an error that escaped the application), the same way."""

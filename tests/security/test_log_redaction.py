"""No log line quotes a row PostgreSQL refused: its DETAIL holds the row's values (prompts,
answers, end users), and a traceback of the error, logged from anywhere, would carry them."""

from __future__ import annotations

import io
import logging

import pytest
from django.db import IntegrityError, connection

from gateway_site.log_format import LogFormatter, ServerLogFormatter, database_error_summary
from gateway_site.server import uvicorn_options

pytestmark = [pytest.mark.django_db]

SSN = "078-05-1120"


def _refused_row() -> IntegrityError:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE refused (prompt text CHECK (length(prompt) < 5))")
        try:
            cursor.execute("INSERT INTO refused VALUES (%s)", [f"my SSN is {SSN}"])
        except IntegrityError as error:
            return error
    raise AssertionError("the row was not refused")


def _logged(formatter: logging.Formatter, error: BaseException) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.log_redaction")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("a periodic job failed") from error
        except RuntimeError:
            logger.exception("unexpected error in POST /v1/chat/completions")
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_a_refused_rows_values_stay_out_of_a_logged_traceback() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's DETAIL")
    error = _refused_row()
    plain = _logged(logging.Formatter("%(message)s"), error)
    assert SSN in plain  # what Python's own formatter writes: the row, quoted

    logged = _logged(LogFormatter("%(message)s"), error)

    assert SSN not in logged
    # Still a traceback an operator can act on: where, which error, which constraint.
    assert "Traceback (most recent call last):" in logged
    assert "_refused_row" in logged
    assert 'violates check constraint "refused_prompt_check"' in logged
    assert "RuntimeError: a periodic job failed" in logged
    assert "direct cause of the following exception" in logged


def test_other_errors_are_logged_whole() -> None:
    logged = _logged(LogFormatter("%(message)s"), ValueError("a key named bench-key"))
    assert "ValueError: a key named bench-key" in logged
    assert "RuntimeError: a periodic job failed" in logged


def test_the_gateways_log_handlers_use_it() -> None:
    formatters = {type(h.formatter) for h in logging.getLogger().handlers if h.formatter}
    assert LogFormatter in formatters


def test_uvicorn_logs_an_error_that_escaped_the_application_the_same_way() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's DETAIL")
    config = uvicorn_options()["log_config"]
    assert isinstance(config, dict)
    spec = config["formatters"]["default"]
    formatter = ServerLogFormatter(spec["fmt"], use_colors=False)
    assert spec["()"] == "gateway_site.log_format.ServerLogFormatter"

    logged = _logged(formatter, _refused_row())

    assert SSN not in logged
    assert "ERROR:" in logged and "refused_prompt_check" in logged


class _Diag:
    def __init__(self, primary: str | None) -> None:
        self.message_primary = primary


class _DriverError(Exception):
    def __init__(self, text: str, primary: str | None) -> None:
        super().__init__(text)
        self.diag = _Diag(primary)


def test_a_diag_without_a_primary_message_falls_back_to_its_causes() -> None:
    # Django's error carries a diag of its own with no primary message; psycopg's cause has it.
    cause = _DriverError(f"DETAIL: Failing row contains ({SSN})", "value too long")
    try:
        raise _DriverError(f"DETAIL: Failing row contains ({SSN})", None) from cause
    except _DriverError as error:
        outer = error

    assert database_error_summary(outer) == "_DriverError: value too long"
    logged = _logged(LogFormatter("%(message)s"), outer)
    assert SSN not in logged
    assert "value too long" in logged


def test_a_diag_with_no_primary_message_anywhere_logs_the_type_alone() -> None:
    error = _DriverError(f"Failing row contains ({SSN})", None)
    assert database_error_summary(error) == "_DriverError"
    assert SSN not in _logged(LogFormatter("%(message)s"), error)

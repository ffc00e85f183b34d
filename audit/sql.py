"""The audit insert as one prepared statement: the ORM's per-row work is most of its cost.

The statement and the per-column converters are built once from the model, so a column added to
AuditRecord (and AuditEntry) is written without touching this module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from audit.entries import COMPLETION_FIELDS, INTERRUPTION_FIELDS, AuditEntry
from audit.models import AuditRecord, AuditStatus

Converter = Callable[[Any], Any]


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _converter(field: models.Field[Any, Any], connection: BaseDatabaseWrapper) -> Converter:
    if isinstance(field, models.JSONField):
        return _json
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, models.DecimalField):
        digits, places = field.max_digits, field.decimal_places
        return lambda value: connection.ops.adapt_decimalfield_value(value, digits, places)
    return lambda value: value


Plan = tuple[str, Sequence[tuple[str, Converter]]]
_plans: dict[tuple[str, str], Plan] = {}


def _plan(
    kind: str, connection: BaseDatabaseWrapper, build: Callable[[BaseDatabaseWrapper], Plan]
) -> Plan:
    plan = _plans.get((kind, connection.vendor))
    if plan is None:
        plan = _plans[(kind, connection.vendor)] = build(connection)
    return plan


def _build_plan(connection: BaseDatabaseWrapper) -> Plan:
    fields = [f for f in AuditRecord._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Only model metadata (quoted) goes into the text; every value is a bound parameter.
    sql = f"INSERT INTO {quote(AuditRecord._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    return sql, [(f.attname, _converter(f, connection)) for f in fields]


def insert_entries(connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry]) -> None:
    _execute(connection, _plan("insert", connection, _build_plan), entries)


Rows = tuple[str, list[tuple[Any, ...]]]  # "table (columns)", one tuple of parameters per row


def insert_entries_with(
    connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry], also: Rows | None
) -> None:
    statement, params = insert_statement(connection, entries, also)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def insert_statement(
    connection: BaseDatabaseWrapper,
    entries: Sequence[AuditEntry],
    also: Rows | None,
    *,
    numbered: bool = False,
) -> tuple[str, list[Any]]:
    """PostgreSQL: the records, and `also` rows in another table, as ONE statement.

    In autocommit that is one round trip and one commit, where a transaction of separate
    statements takes four (BEGIN, two inserts, COMMIT): most of what a request waits for its
    record. Both tables are written or neither, as in a transaction.

    `numbered`: PostgreSQL's own `$1, $2…` placeholders, for a raw cursor, which sends the text
    as it is. psycopg parses `%s` statements of over 50 parameters again on every execution
    (it caches only short ones), and that parse was most of the writer's time on the loop.
    """
    _, columns = _plan("insert", connection, _build_plan)
    counter = itertools.count(1)

    def row(width: int) -> str:
        if numbered:
            return "(" + ", ".join(f"${next(counter)}" for _ in range(width)) + ")"
        return "(" + ", ".join(["%s"] * width) + ")"

    params: list[Any] = []
    prefix = ""
    if also is not None and also[1]:
        target, rows = also
        # A data-modifying WITH runs to completion with the statement: both inserts or neither.
        prefix = (
            f"WITH also AS (INSERT INTO {target} VALUES {', '.join(row(len(r)) for r in rows)}) "  # noqa: S608 - metadata only
        )
        params.extend(value for r in rows for value in r)
    for entry in entries:
        params.extend(convert(getattr(entry, attname)) for attname, convert in columns)
    values = ", ".join(row(len(columns)) for _ in entries)
    return f"{prefix}{_insert_head(connection)} VALUES {values}", params


def _insert_head(connection: BaseDatabaseWrapper) -> str:
    sql, _ = _plan("insert", connection, _build_plan)
    return sql.partition(" VALUES ")[0]


def _completion_fields(names: Sequence[str] = COMPLETION_FIELDS) -> list[models.Field[Any, Any]]:
    """What a completion writes, then the two columns that find its record (request_id,
    started_at): one list for both ways of writing completions below."""
    by_name = {f.name: f for f in AuditRecord._meta.concrete_fields}
    return [by_name[name] for name in (*names, "request_id", "started_at")]


def _build_completion_plan(
    connection: BaseDatabaseWrapper, names: Sequence[str] = COMPLETION_FIELDS
) -> Plan:
    fields = _completion_fields(names)
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields[:-2])
    # Only an unfinished record may be completed, and only once. Its start time names its month:
    # on the partitioned table (audit/partitions.py) the update looks in that partition alone.
    sql = (
        f"UPDATE {quote(AuditRecord._meta.db_table)} SET {assignments} "  # noqa: S608 - metadata only
        f"WHERE {quote('request_id')} = %s AND {quote('started_at')} = %s "
        f"AND {quote('status')} = '{AuditStatus.IN_PROGRESS.value}'"
    )
    return sql, [(f.attname, _converter(f, connection)) for f in fields]


def complete_entries(
    connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry], *, interrupted: bool = False
) -> None:
    """`interrupted`: a recovery's completion, which leaves what the start record holds."""
    if interrupted:
        plan = _plan("interrupt", connection, _build_interruption_plan)
    else:
        plan = _plan("complete", connection, _build_completion_plan)
    _execute(connection, plan, entries)


def completion_statement(
    connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry], also: Rows | None
) -> tuple[str, list[Any]]:
    """PostgreSQL: stream completions, and `also` rows in another table (their ledger rows), as
    ONE statement with `$n` placeholders (the writer's raw cursor on the event loop): one round
    trip and one commit in autocommit, like `insert_statement`. Only an unfinished record is
    completed, in its month's partition, as in `complete_entries`."""
    columns = _completion_columns(connection)
    quote = connection.ops.quote_name
    counter = itertools.count(1)
    params: list[Any] = []
    prefix = ""
    if also is not None and also[1]:
        target, rows = also
        marks = ", ".join("(" + ", ".join(f"${next(counter)}" for _ in r) + ")" for r in rows)
        prefix = f"WITH also AS (INSERT INTO {target} VALUES {marks}) "  # noqa: S608 - metadata only
        params.extend(value for r in rows for value in r)
    values = []
    for entry in entries:
        # Typed placeholders: a VALUES list in FROM gives PostgreSQL no column to infer them from.
        values.append("(" + ", ".join(f"${next(counter)}::{c.db_type}" for c in columns) + ")")
        params.extend(c.convert(getattr(entry, c.attname)) for c in columns)
    key = {"request_id", "started_at"}
    assignments = ", ".join(
        f"{quote(c.column)} = v.{quote(c.column)}" for c in columns if c.attname not in key
    )
    found = " AND ".join(f"r.{quote(name)} = v.{quote(name)}" for name in sorted(key))
    sql = (
        f"{prefix}UPDATE {quote(AuditRecord._meta.db_table)} AS r SET {assignments} "  # noqa: S608 - metadata only
        f"FROM (VALUES {', '.join(values)}) AS v ({', '.join(quote(c.column) for c in columns)}) "
        f"WHERE {found} AND r.{quote('status')} = '{AuditStatus.IN_PROGRESS.value}'"
    )
    return sql, params


@dataclass(frozen=True, slots=True)
class _Column:
    column: str
    attname: str
    db_type: str
    convert: Converter


_completion_columns_by_vendor: dict[str, list[_Column]] = {}


def _completion_columns(connection: BaseDatabaseWrapper) -> list[_Column]:
    columns = _completion_columns_by_vendor.get(connection.vendor)
    if columns is None:
        columns = _completion_columns_by_vendor[connection.vendor] = [
            _Column(f.column, f.attname, f.db_type(connection) or "text", _converter(f, connection))
            for f in _completion_fields()
        ]
    return columns


def _build_interruption_plan(connection: BaseDatabaseWrapper) -> Plan:
    return _build_completion_plan(connection, INTERRUPTION_FIELDS)


def _execute(connection: BaseDatabaseWrapper, plan: Plan, entries: Sequence[AuditEntry]) -> None:
    sql, columns = plan
    rows = [[convert(getattr(entry, attname)) for attname, convert in columns] for entry in entries]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)

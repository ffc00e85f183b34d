"""Monthly partitions of the audit records table (PostgreSQL), their seal, and retention by month.

Migration 0014 makes `audit_auditrecord` a table partitioned by month of `started_at`, with a
default partition for records outside every month. This module creates months ahead (the beat
task `audit.partitions`, `manage.py audit_partitions`), seals a finished month (every record in
it chained; a signed summary of how many records each tenant has there and at which chain
positions) and drops a sealed month whose every record is past its tenant's retention and under
no legal hold: one signed purge checkpoint per tenant, then DETACH and DROP in one transaction.
On SQLite nothing here applies: the table stays plain and retention deletes rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import chain
from audit.activity.services import SYSTEM, Actor
from audit.models import (
    AuditChainHead,
    AuditMonth,
    AuditPolicy,
    AuditRecord,
    CheckpointKind,
    MonthState,
)
from audit.sealer import audit_seal_pending, checkpoint_create
from audit.selectors import held_q, holds_locked

TABLE = AuditRecord._meta.db_table
DEFAULT = f"{TABLE}_default"
# Only derived from other columns: never copied, PostgreSQL computes it.
GENERATED = ("search_document",)
# DETACH and DROP take the parent's strongest lock; behind a long reader they would make every
# insert queue behind them. Rather give up and try again at the next run.
LOCK_TIMEOUT = "2s"


class PartitionError(Exception):
    """What cannot be done to a month; the message says why."""


def month_of(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end_month = next_month(month)
    return start, datetime(end_month.year, end_month.month, 1, tzinfo=UTC)


def table_name(month: date) -> str:
    return f"{TABLE}_p{month:%Y%m}"


def partitioned() -> bool:
    """Whether the records table is partitioned here (PostgreSQL after migration 0014)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def _attached() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        return {name for (name,) in cursor.fetchall()}


def _columns(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "AND attname <> ALL(%s)",
            [table, list(GENERATED)],
        )
        return str(cursor.fetchone()[0])


def _no_truncate(cursor: Any, table: str) -> None:
    cursor.execute(
        f"CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
    )


def partition_create(month: date) -> bool:
    """Create one month's partition; False if it exists. Records of that month waiting in the
    default partition move into it, unchanged (same ids, same content: the chain is unaffected)."""
    name = table_name(month)
    if name in _attached():
        AuditMonth.objects.get_or_create(month=month, defaults={"table": name})
        return False
    start, end = month_bounds(month)
    bounds = f"FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE started_at >= %s AND started_at < %s)",  # noqa: S608 - names from constants
            [start, end],
        )
        if cursor.fetchone()[0]:
            columns = _columns(TABLE)
            cursor.execute(
                f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                "INCLUDING GENERATED)"
            )
            cursor.execute(
                f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {DEFAULT} "  # noqa: S608
                "WHERE started_at >= %s AND started_at < %s",
                [start, end],
            )
            # The one delete besides retention's: the rows now stand in their month.
            cursor.execute("SELECT set_config('audit.purge', 'on', true)")
            cursor.execute(
                f"DELETE FROM {DEFAULT} WHERE started_at >= %s AND started_at < %s",  # noqa: S608
                [start, end],
            )
            cursor.execute("SELECT set_config('audit.purge', 'off', true)")
            cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES {bounds}")
        else:
            cursor.execute(f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES {bounds}")
        _no_truncate(cursor, name)
        AuditMonth.objects.update_or_create(
            month=month, defaults={"table": name, "state": MonthState.LIVE}
        )
    return True


def audit_partitions_ensure(
    *, now: datetime | None = None, ahead: int | None = None, since: date | None = None
) -> list[date]:
    """Create the partitions of this month and `ahead` months after it (and from `since` on, if
    given); returns the months created. Nothing on SQLite."""
    if not partitioned():
        return []
    now = now or timezone.now()
    ahead = settings.AUDIT_PARTITION_MONTHS_AHEAD if ahead is None else ahead
    month = since or month_of(now)
    last = month_of(now)
    for _ in range(ahead):
        last = next_month(last)
    created = []
    while month <= last:
        if partition_create(month):
            created.append(month)
        month = next_month(month)
    return created


# --- sealing a finished month --------------------------------------------------------------


def month_message(month: AuditMonth) -> dict[str, Any]:
    return {
        "month": month.month.isoformat(),
        "table": month.table,
        "record_count": month.record_count,
        "last_record_id": month.last_record_id,
        "tenants": month.tenants,
        "sealed_at": chain.plain(month.sealed_at),
    }


def _counts(table: str) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), coalesce(max(id), 0) FROM {table}")  # noqa: S608
        count, last = cursor.fetchone()
    return int(count), int(last)


def month_seal(month: AuditMonth) -> bool:
    """Seal a finished month: True if every record in it is chained (its summary is then signed),
    False if some are not yet (a stream still open; the next run tries again)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {month.table} r WHERE NOT EXISTS "  # noqa: S608
            "(SELECT 1 FROM audit_auditseal s WHERE s.record_id = r.id))"
        )
        if cursor.fetchone()[0]:
            return False
        # Each tenant's chain positions in this month, as runs of consecutive links.
        cursor.execute(
            "SELECT tenant_id, min(seq), max(seq), count(*) FROM ("  # noqa: S608 - a table name
            " SELECT s.tenant_id, s.seq,"
            "  s.seq - row_number() OVER (PARTITION BY s.tenant_id ORDER BY s.seq) AS run"
            f" FROM {month.table} r JOIN audit_auditseal s ON s.record_id = r.id"
            ") links GROUP BY tenant_id, run ORDER BY tenant_id, min(seq)"
        )
        tenants: dict[str, dict[str, Any]] = {}
        for tenant_id, first, last, count in cursor.fetchall():
            entry = tenants.setdefault(str(tenant_id), {"count": 0, "ranges": []})
            entry["count"] += int(count)
            entry["ranges"].append([int(first), int(last)])
    month.record_count, month.last_record_id = _counts(month.table)
    month.tenants = tenants
    month.sealed_at = timezone.now().replace(microsecond=0)
    month.signature = chain.sign(month_message(month))
    month.state = MonthState.SEALED
    month.save()
    return True


def audit_months_seal(*, now: datetime | None = None) -> list[AuditMonth]:
    """Seal every finished month (ended more than the grace period ago) not sealed yet."""
    if not partitioned():
        return []
    now = now or timezone.now()
    grace = timedelta(hours=settings.AUDIT_MONTH_SEAL_GRACE_HOURS)
    audit_seal_pending()
    sealed = []
    for month in AuditMonth.objects.filter(state=MonthState.LIVE).order_by("month"):
        if month_bounds(month.month)[1] + grace > now or month.table not in _attached():
            continue
        if month_seal(month):
            sealed.append(month)
    return sealed


def month_current(month: AuditMonth) -> bool:
    """Whether a sealed month's summary still describes its partition (no record arrived late,
    none was purged by rows since): else it is sealed again first."""
    signed = chain.signature_valid(month_message(month), month.signature)
    return signed and _counts(month.table) == (month.record_count, month.last_record_id)


# --- retention by month ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthVerdict:
    month: AuditMonth
    droppable: bool
    reason: str


def month_verdict(month: AuditMonth, now: datetime) -> MonthVerdict:
    """Whether retention may drop this sealed month now, and why not."""
    start, end = month_bounds(month.month)
    for tenant_id in month.tenants:
        policy = AuditPolicy.objects.filter(tenant_id=int(tenant_id)).first()
        days = policy.retention_days if policy else settings.AUDIT_DEFAULT_RETENTION_DAYS
        if days is None:
            return MonthVerdict(month, False, f"tenant {tenant_id} keeps its records forever")
        if end > now - timedelta(days=days):
            return MonthVerdict(month, False, f"tenant {tenant_id} keeps records {days} days")
        held = held_q(int(tenant_id))
        if held is not None and (
            AuditRecord.objects.filter(
                tenant_id=int(tenant_id), started_at__gte=start, started_at__lt=end
            )
            .filter(held)
            .exists()
        ):
            return MonthVerdict(month, False, f"tenant {tenant_id} has records under legal hold")
    return MonthVerdict(month, True, "past retention for every tenant in it, none held")


def month_drop(month: AuditMonth, *, now: datetime, actor: Actor = SYSTEM) -> None:
    """Drop a sealed month: a signed purge checkpoint per tenant naming its chain positions
    there, then DETACH and DROP, all in one transaction. The seals stay: the chain verifies
    across the gap as it does across a purge of rows."""
    if month.state != MonthState.SEALED:
        raise PartitionError(f"{month.month:%Y-%m} is {month.state}, not sealed")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # Decided again under each tenant's hold lock: a legal hold placed since the verdict was
        # read keeps the month (a hold waits for this drop, or this drop sees it).
        for tenant_id in sorted(month.tenants, key=int):
            holds_locked(int(tenant_id))
        verdict = month_verdict(month, now)
        if not verdict.droppable:
            raise PartitionError(f"{month.month:%Y-%m} is kept: {verdict.reason}")
        for tenant_id, entry in sorted(month.tenants.items()):
            head = AuditChainHead.objects.get(tenant_id=int(tenant_id))
            checkpoint_create(
                tenant_id=int(tenant_id),
                kind=CheckpointKind.PURGE,
                seq=head.seq,
                head_hash=head.hash,
                count=entry["count"],
                purged_ranges=entry["ranges"],
                details={
                    "before": now.isoformat(),
                    "by": actor.label,
                    "month": f"{month.month:%Y-%m}",
                    "partition": month.table,
                    "archive": month.archive_url,
                },
            )
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {month.table}")
            cursor.execute(f"DROP TABLE {month.table}")
        month.state = MonthState.DROPPED
        month.dropped_at = now
        month.save(update_fields=["state", "dropped_at"])


def audit_months_drop_expired(
    *, now: datetime | None = None, actor: Actor = SYSTEM
) -> list[AuditMonth]:
    """Drop every sealed month past retention with nothing held; returns the months dropped."""
    if not partitioned():
        return []
    now = now or timezone.now()
    audit_months_seal(now=now)
    dropped = []
    for month in AuditMonth.objects.filter(state=MonthState.SEALED).order_by("month"):
        if month_bounds(month.month)[1] > now:
            continue
        if not month_current(month) and not month_seal(month):
            continue
        if month_verdict(month, now).droppable:
            try:
                month_drop(month, now=now, actor=actor)
            except PartitionError:
                continue  # held since: it stays, and the next run decides again
            dropped.append(month)
    return dropped

"""The spend ledger: appended with each request's audit record, summed to load a budget window."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet, Sum

from audit.entries import AuditEntry
from audit.models import AuditStatus
from tenants.quotas.core.windows import Window
from tenants.quotas.models import BudgetAlert, SpendEntry
from tenants.quotas.table import BudgetRule
from tenants.selectors import key_lineage

_COLUMNS = (
    "request_id",
    "tenant_id",
    "team_id",
    "api_key_id",
    "end_user",
    "amount_usd",
    "occurred_at",
    "estimated",
)


def chargeable(entries: Sequence[AuditEntry]) -> list[AuditEntry]:
    """Finished requests that cost something; an unfinished stream is charged when it ends."""
    return [e for e in entries if e.cost_usd and e.status != AuditStatus.IN_PROGRESS]


def spend_rows(
    connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry]
) -> tuple[str, list[tuple[Any, ...]]]:
    """The ledger's "table (columns)" and one row of parameters per chargeable entry."""
    ops = connection.ops
    quote = ops.quote_name
    target = f"{quote(SpendEntry._meta.db_table)} ({', '.join(quote(c) for c in _COLUMNS)})"
    return target, [
        (
            e.request_id,
            e.tenant_id,
            e.team_id,
            e.api_key_id,
            e.end_user,
            ops.adapt_decimalfield_value(e.cost_usd, 16, 10),
            ops.adapt_datetimefield_value(e.started_at),
            e.usage_estimated,
        )
        for e in chargeable(entries)
    ]


def insert_spend(connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry]) -> None:
    """Append ledger rows in the audit writer's transaction: a record and its charge land together."""
    target, params = spend_rows(connection, entries)
    if not params:
        return
    sql = f"INSERT INTO {target} VALUES ({', '.join(['%s'] * len(_COLUMNS))})"  # noqa: S608 - metadata only
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def window_spend(rule: BudgetRule, end_user: str, window: Window) -> Decimal:
    """What the ledger holds for one budget in one window: the truth the counters are seeded from."""
    total = _window_entries(rule, end_user, window).aggregate(total=Sum("amount_usd"))["total"]
    return total or Decimal(0)


def window_spend_charged(
    rule: BudgetRule, end_user: str, window: Window, request_ids: Sequence[str]
) -> tuple[Decimal, list[str]]:
    """`window_spend`, and which of `request_ids` (calls still holding a reservation) it already
    holds. Those are read first: a row committed in between is then summed but not named, so
    its settlement charges it a second time rather than not at all."""
    entries = _window_entries(rule, end_user, window)
    charged = list(entries.filter(request_id__in=request_ids).values_list("request_id", flat=True))
    total = entries.aggregate(total=Sum("amount_usd"))["total"] or Decimal(0)
    return total, charged


def _window_entries(rule: BudgetRule, end_user: str, window: Window) -> QuerySet[SpendEntry]:
    entries = SpendEntry.objects.filter(
        tenant_id=rule.tenant_id, occurred_at__gte=window.start, occurred_at__lt=window.end
    )
    if rule.team_id is not None:
        entries = entries.filter(team_id=rule.team_id)
    if rule.api_key_id is not None:  # a rotated key's spend counts for its successor's budget
        entries = entries.filter(api_key_id__in=key_lineage(key_id=rule.api_key_id))
    if rule.per_user:
        entries = entries.filter(end_user=end_user)
    return entries


def alert_raise(
    rule: BudgetRule | None, window: Window | None, end_user: str, threshold_pct: int
) -> None:
    """Record that a budget window crossed one of its alert thresholds (once; the counters said so)."""
    assert rule is not None and window is not None
    BudgetAlert.objects.get_or_create(
        budget_id=rule.id, window_start=window.start, end_user=end_user, threshold_pct=threshold_pct
    )

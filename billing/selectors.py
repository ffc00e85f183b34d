"""Reads for finance: cost by team, feature, user, model or route from the daily rollups; always
per tenant.

Windows are whole UTC days [start, end). The rollups are refreshed by Celery beat every few
minutes (billing/rollups.py); the requests of one user come from the audit records themselves.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from audit.models import AuditRecord
from billing.models import Granularity, Price, UsageRollup
from billing.money import money, pace_projection
from tenants.models import Team, Tenant

DIMENSIONS = {
    "team": "team_id",
    "feature": "feature",
    "user": "end_user",
    "model": "model",
    "route": "route",
}
_NONE_LABEL = {
    "team": "(no team)",
    "feature": "(no feature)",
    "user": "(no user)",
    "model": "(not served)",  # rejected, or no provider answered: no deployment to name
    "route": "(no route)",  # a deployment asked for by its own name, or refused before routing
}


@dataclass(frozen=True, slots=True)
class CostRow:
    key: str  # the group's value: a team id, feature, end user, the deployment that served or
    # the route alias asked for
    label: str
    cost_usd: Decimal
    requests: int
    errors: int
    tokens: int


@dataclass(frozen=True, slots=True)
class CostSeries:
    days: list[date]
    series: dict[str, list[Decimal]]  # label -> cost per day, largest first


def _moment(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _rollups(
    *, tenant: Tenant, start: date, end: date, team_id: int | None = None, user: str | None = None
) -> QuerySet[UsageRollup]:
    rows = UsageRollup.objects.filter(
        tenant=tenant,
        granularity=Granularity.DAY,
        bucket_start__gte=_moment(start),
        bucket_start__lt=_moment(end),
    )
    if team_id is not None:
        rows = rows.filter(team_id=team_id)
    if user is not None:
        rows = rows.filter(end_user=user)
    return rows


def _labels(tenant: Tenant, dimension: str, keys: list[str]) -> dict[str, str]:
    if dimension == "team":
        teams = Team.objects.filter(tenant=tenant, id__in=[int(k) for k in keys])
        return {str(t.id): t.name for t in teams}
    return {k: k or _NONE_LABEL[dimension] for k in keys}


def cost_breakdown(
    *, tenant: Tenant, start: date, end: date, dimension: str, team_id: int | None = None
) -> list[CostRow]:
    field = DIMENSIONS[dimension]
    groups = list(
        _rollups(tenant=tenant, start=start, end=end, team_id=team_id)
        .values(field)
        .annotate(
            cost=Sum("cost_usd"),
            requests=Sum("requests"),
            errors=Sum("errors"),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
        )
        .order_by("-cost", field)
    )
    labels = _labels(tenant, dimension, [str(g[field]) for g in groups])
    return [
        CostRow(
            key=str(g[field]),
            label=labels.get(str(g[field]), str(g[field])),
            cost_usd=g["cost"] or Decimal(0),
            requests=g["requests"] or 0,
            errors=g["errors"] or 0,
            tokens=(g["prompt"] or 0) + (g["completion"] or 0),
        )
        for g in groups
    ]


def cost_series(
    *,
    tenant: Tenant,
    start: date,
    end: date,
    dimension: str,
    breakdown: list[CostRow],
    team_id: int | None = None,
    top: int = 5,
) -> CostSeries:
    """Daily cost of the `top` largest groups of `breakdown`, the rest summed as "others"."""
    field = DIMENSIONS[dimension]
    leaders = {row.key: row.label for row in breakdown[:top]}
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    index = {day: i for i, day in enumerate(days)}
    series: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(days))
    rows = (
        _rollups(tenant=tenant, start=start, end=end, team_id=team_id)
        .values("bucket_start", field)
        .annotate(cost=Sum("cost_usd"))
        .order_by()
    )
    for row in rows:
        label = leaders.get(str(row[field]), "others")
        series[label][index[row["bucket_start"].astimezone(UTC).date()]] += row["cost"] or 0
    ordered = {label: series[label] for label in [*leaders.values(), "others"] if label in series}
    return CostSeries(days, ordered)


@dataclass(frozen=True, slots=True)
class MonthOutlook:
    month_start: date
    month_to_date_usd: Decimal
    forecast_usd: Decimal  # at the month's end, at the pace so far (billing.money.pace_projection)
    days_left: int


def month_outlook(*, tenant: Tenant, now: datetime, team_id: int | None = None) -> MonthOutlook:
    """This UTC month so far and where it ends at this pace: the same computation as a monthly
    budget's "at this pace", so the two agree for the same month and the same spend."""
    today = now.astimezone(UTC).date()
    month_start = today.replace(day=1)
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    next_month = month_start + timedelta(days=days_in_month)
    mtd = _rollups(
        tenant=tenant, start=month_start, end=today + timedelta(days=1), team_id=team_id
    ).aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
    forecast = pace_projection(
        spent=mtd, start=_moment(month_start), end=_moment(next_month), now=now
    )
    return MonthOutlook(month_start, money(mtd), forecast, days_in_month - today.day)


def user_requests(
    *,
    tenant: Tenant,
    team_id: int,
    end_user: str,
    start: date,
    end: date,
    limit: int = 500,
) -> QuerySet[AuditRecord]:
    """The requests behind a user's cost, newest first (from the audit records)."""
    return (
        AuditRecord.objects.filter(
            Q(tenant=tenant, team_id=team_id, end_user=end_user),
            started_at__gte=_moment(start),
            started_at__lt=_moment(end),
        )
        .only(
            "request_id",
            "started_at",
            "model_requested",
            "deployment_name",
            "feature",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "latency_ms",
        )
        .order_by("-started_at")[:limit]
    )


def price_history() -> QuerySet[Price]:
    """Every deployment's prices, newest first within each (the prices page's history)."""
    return Price.objects.filter(deployment__isnull=False).select_related("deployment")


def team_of(*, tenant: Tenant, team_id: int) -> Team | None:
    return Team.objects.filter(tenant=tenant, id=team_id).first()

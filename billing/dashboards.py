"""Reads for the operations dashboards: traffic, errors, latency, time to first token, cost and
tokens over time and by model, provider, route, team or task category; routing distribution and
fallbacks. Always per tenant.

Everything comes from the rollups (billing/rollups.py): hourly buckets for windows of up to a
week, daily ones beyond, so a year of traffic is a few hundred thousand rollup rows at most, read
through the `rollup_tenant_time` index. Latency percentiles cannot be merged exactly across
groups; a bucket's figure is the request-weighted mean of its groups' percentiles (exact when one
group served the bucket), which the page says. The only read of audit records is the list of
recent fallbacks: the last day of the window, at most `RECENT` rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from audit.models import AuditRecord
from billing.models import Granularity, UsageRollup
from billing.rollups import JsonArrayLength
from tenants.models import Team, Tenant

DIMENSIONS = {
    "model": "model",
    "provider": "provider",
    "route": "route",
    "team": "team_id",
    "category": "category",
}
_NONE_LABEL = {
    "model": "(not served)",
    "provider": "(not served)",
    "route": "(no route)",
    "team": "(no team)",
    "category": "(no category)",
}
# Windows of up to this long are drawn hour by hour; longer ones day by day.
HOURLY_UP_TO = timedelta(days=7)
RECENT = 20


@dataclass(frozen=True, slots=True)
class Figures:
    """One bucket's or one group's traffic."""

    requests: int
    errors: int
    rejected: int
    fallbacks: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class Group:
    key: str
    label: str
    figures: Figures


@dataclass(frozen=True, slots=True)
class RouteShare:
    route: str
    deployment: str
    requests: int
    fallbacks: int
    share: float  # of the route's requests


@dataclass(frozen=True, slots=True)
class Dashboard:
    granularity: str
    buckets: list[datetime]
    series: list[Figures]  # one per bucket, zeros where nothing ran
    total: Figures
    groups: list[Group]
    routing: list[RouteShare]


def _weighted(field: str) -> Any:
    """Sum of a percentile times the requests it describes, and the requests it describes."""
    return Sum(F(field) * F("requests")), Sum("requests", filter=Q(**{f"{field}__isnull": False}))


def _aggregates() -> dict[str, Any]:
    aggregates: dict[str, Any] = {
        "n_requests": Coalesce(Sum("requests"), 0),
        "n_errors": Coalesce(Sum("errors"), 0),
        "n_rejected": Coalesce(Sum("rejected"), 0),
        "n_fallbacks": Coalesce(Sum("fallbacks"), 0),
        "prompt": Coalesce(Sum("prompt_tokens"), 0),
        "completion": Coalesce(Sum("completion_tokens"), 0),
        "cost": Sum("cost_usd"),
    }
    for name, field in (
        ("p50", "latency_p50_ms"),
        ("p95", "latency_p95_ms"),
        ("p99", "latency_p99_ms"),
        ("t50", "ttft_p50_ms"),
        ("t95", "ttft_p95_ms"),
    ):
        aggregates[f"{name}_sum"], aggregates[f"{name}_n"] = _weighted(field)
    return aggregates


def _summed(rows: list[dict[str, Any]], aggregates: dict[str, Any]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for name in aggregates:
        present = [row[name] for row in rows if row[name] is not None]
        total[name] = sum(present) if present else None
    for name in ("n_requests", "n_errors", "n_rejected", "n_fallbacks", "prompt", "completion"):
        total[name] = total[name] or 0
    return total


def _mean(row: dict[str, Any], name: str) -> float | None:
    n = row.get(f"{name}_n") or 0
    return round(row[f"{name}_sum"] / n, 1) if n and row.get(f"{name}_sum") is not None else None


def _figures(row: dict[str, Any]) -> Figures:
    return Figures(
        requests=row["n_requests"],
        errors=row["n_errors"],
        rejected=row["n_rejected"],
        fallbacks=row["n_fallbacks"],
        prompt_tokens=row["prompt"],
        completion_tokens=row["completion"],
        cost_usd=row["cost"] or Decimal(0),
        p50_ms=_mean(row, "p50"),
        p95_ms=_mean(row, "p95"),
        p99_ms=_mean(row, "p99"),
        ttft_p50_ms=_mean(row, "t50"),
        ttft_p95_ms=_mean(row, "t95"),
    )


EMPTY = Figures(0, 0, 0, 0, 0, 0, Decimal(0), None, None, None, None, None)


def granularity_for(start: datetime, end: datetime) -> str:
    return Granularity.HOUR if end - start <= HOURLY_UP_TO else Granularity.DAY


def _rows(
    *,
    tenant: Tenant,
    granularity: str,
    start: datetime,
    end: datetime,
    team_id: int | None,
    api_key_ids: Iterable[int] | None,
) -> QuerySet[UsageRollup]:
    rows = UsageRollup.objects.filter(
        tenant=tenant, granularity=granularity, bucket_start__gte=start, bucket_start__lt=end
    )
    if team_id is not None:
        rows = rows.filter(team_id=team_id)
    if api_key_ids is not None:
        rows = rows.filter(api_key_id__in=list(api_key_ids))
    return rows


def _labels(tenant: Tenant, dimension: str, keys: list[str]) -> dict[str, str]:
    if dimension == "team":
        teams = Team.objects.filter(tenant=tenant, id__in=[int(k) for k in keys if k.isdigit()])
        return {str(t.id): t.name for t in teams}
    return {k: k or _NONE_LABEL[dimension] for k in keys}


def dashboard(
    *,
    tenant: Tenant,
    start: datetime,
    end: datetime,
    dimension: str,
    team_id: int | None = None,
    api_key_ids: Iterable[int] | None = None,
) -> Dashboard:
    """The tenant's traffic in [start, end) (whole buckets), over time and by `dimension`."""
    granularity = granularity_for(start, end)
    step = timedelta(hours=1) if granularity == Granularity.HOUR else timedelta(days=1)
    keys = list(api_key_ids) if api_key_ids is not None else None
    rows = _rows(
        tenant=tenant,
        granularity=granularity,
        start=start,
        end=end,
        team_id=team_id,
        api_key_ids=keys,
    )
    aggregates = _aggregates()
    bucket_rows = list(rows.values("bucket_start").annotate(**aggregates).order_by())
    per_bucket = {row["bucket_start"]: _figures(row) for row in bucket_rows}
    buckets = []
    moment = start
    while moment < end:
        buckets.append(moment)
        moment += step
    total_row = _summed(bucket_rows, aggregates)  # the buckets add up: no second scan
    field = DIMENSIONS[dimension]
    grouped = list(rows.values(field).annotate(**aggregates).order_by("-n_requests", field))
    labels = _labels(tenant, dimension, [str(g[field]) for g in grouped])
    routing = list(
        rows.exclude(route="")
        .values("route", "model")
        .annotate(n_requests=Sum("requests"), n_fallbacks=Sum("fallbacks"))
        .order_by("route", "-n_requests", "model")
    )
    per_route: dict[str, int] = {}
    for share in routing:
        per_route[share["route"]] = per_route.get(share["route"], 0) + share["n_requests"]
    return Dashboard(
        granularity=granularity,
        buckets=buckets,
        series=[per_bucket.get(bucket, EMPTY) for bucket in buckets],
        total=_figures(total_row) if total_row["n_requests"] else EMPTY,
        groups=[
            Group(str(g[field]), labels.get(str(g[field]), str(g[field])), _figures(g))
            for g in grouped
        ],
        routing=[
            RouteShare(
                route=s["route"],
                deployment=s["model"] or "(not served)",
                requests=s["n_requests"],
                fallbacks=s["n_fallbacks"],
                share=s["n_requests"] / per_route[s["route"]] if per_route[s["route"]] else 0.0,
            )
            for s in routing
        ],
    )


def recent_fallbacks(
    *,
    tenant: Tenant,
    end: datetime,
    team_id: int | None = None,
    api_key_ids: Iterable[int] | None = None,
) -> list[AuditRecord]:
    """The last requests a fallback served, from the day before `end`: bounded by time and count."""
    records = AuditRecord.objects.filter(
        tenant=tenant, started_at__gte=end - timedelta(days=1), started_at__lt=end
    )
    if team_id is not None:
        records = records.filter(team_id=team_id)
    if api_key_ids is not None:
        records = records.filter(api_key_id__in=list(api_key_ids))
    return list(
        records.annotate(tried=JsonArrayLength("attempts"))
        .filter(tried__gt=1)
        .only(
            "request_id",
            "started_at",
            "route_alias",
            "deployment_name",
            "status",
            "attempts",
            "latency_ms",
        )
        .order_by("-started_at")[:RECENT]
    )

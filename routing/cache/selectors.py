"""Reads: what the cache served and saved, per route and task category (tenant-scoped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from audit.models import AuditRecord
from tenants.models import Tenant


@dataclass(frozen=True, slots=True)
class CacheRow:
    route: str
    category: str
    requests: int  # on the route while it cached
    hits: int
    semantic_hits: int
    saved_usd: Decimal

    @property
    def hit_rate(self) -> float:
        return self.hits / self.requests if self.requests else 0.0


def _moment(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def cache_savings(*, tenant: Tenant, start: date, end: date) -> list[CacheRow]:
    """Per route and category, from the audit records (each names its cache status)."""
    rows = (
        AuditRecord.objects.filter(
            tenant=tenant,
            started_at__gte=_moment(start),
            started_at__lt=_moment(end),
            routing__cache__status__isnull=False,
        )
        .annotate(category=KT("routing__category"))
        .values("route_alias", "category")
        .annotate(
            requests=Count("id"),
            hits=Count("id", filter=Q(routing__cache__status="hit")),
            semantic=Count("id", filter=Q(routing__cache__kind="semantic")),
            saved=Sum(
                Cast(
                    KT("routing__cache__saved_usd"), DecimalField(max_digits=20, decimal_places=10)
                )
            ),
        )
        .order_by("route_alias", "category")
    )
    return [
        CacheRow(
            route=row["route_alias"],
            category=row["category"] or "",
            requests=row["requests"],
            hits=row["hits"],
            semantic_hits=row["semantic"],
            saved_usd=row["saved"] or Decimal(0),
        )
        for row in rows
    ]

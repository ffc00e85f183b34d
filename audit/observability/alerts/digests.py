"""Tier 2 (daily) and Tier 3 (weekly) signals, sent as digests rather than alerts.

Read from the daily rollups (and, for the compliance summary, the audit records' findings).
Delivered to the same webhooks as alerts, as `digest.daily` / `digest.weekly` events.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings
from django.db.models import Count, Sum

from audit.observability.alert_settings import AlertSettings
from audit.observability.alerts.detectors import is_pii
from billing.models import Granularity, UsageRollup
from billing.records import records_between

logger = logging.getLogger("gateway.alerts")


def _day(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _rollups(start: date, end: date) -> Any:
    return UsageRollup.objects.filter(
        granularity=Granularity.DAY, bucket_start__gte=_day(start), bucket_start__lt=_day(end)
    )


def _money(value: Decimal | None) -> str:
    return f"{value or 0:.2f}"


def daily_digest(*, today: date) -> dict[str, Any]:
    """Yesterday, per team against its 7-day average; cache hits, routing and tokens per model."""
    yesterday = today - timedelta(days=1)
    spent = dict(_rollups(yesterday, today).values_list("team_id").annotate(c=Sum("cost_usd")))
    week = dict(
        _rollups(yesterday - timedelta(days=7), yesterday)
        .values_list("team_id")
        .annotate(c=Sum("cost_usd"))
    )
    models = (
        _rollups(yesterday, today)
        .values("model")
        .annotate(
            requests=Sum("requests"),
            cache_hits=Sum("cache_hits"),
            tokens_in=Sum("prompt_tokens"),
            tokens_out=Sum("completion_tokens"),
        )
        .order_by("-requests")
    )
    return {
        "event": "digest.daily",
        "day": yesterday.isoformat(),
        "cost_by_team": [
            {
                "team_id": team,
                "cost_usd": _money(cost),
                "average_7d_usd": _money((week.get(team) or Decimal(0)) / 7),
            }
            for team, cost in sorted(spent.items(), key=lambda kv: -(kv[1] or 0))
        ],
        "models": [
            {
                "model": m["model"],
                "requests": m["requests"],
                "cache_hit_rate": round(m["cache_hits"] / m["requests"], 4) if m["requests"] else 0,
                "tokens_in": m["tokens_in"],
                "tokens_out": m["tokens_out"],
            }
            for m in models
        ],
    }


def weekly_digest(*, today: date) -> dict[str, Any]:
    """The last 7 days: cost by tenant, team and feature; the compliance summary."""
    start = today - timedelta(days=7)
    by_feature = (
        _rollups(start, today)
        .values("tenant__slug", "team__slug", "feature")
        .annotate(cost=Sum("cost_usd"), requests=Sum("requests"), rejected=Sum("rejected"))
        .order_by("tenant__slug", "-cost")
    )
    records = records_between(_day(start), _day(today))
    pii: dict[str, int] = defaultdict(int)
    flagged = records.exclude(guardrail_findings=[]).values_list(
        "tenant__slug", "guardrail_findings"
    )
    for tenant, findings in flagged.iterator(chunk_size=2000):
        pii[tenant] += sum(1 for f in findings if is_pii(f))
    rejections = (
        records.filter(status="rejected")
        .values("tenant__slug", "error_type")
        .annotate(n=Count("id"))
        .order_by("tenant__slug")
    )
    return {
        "event": "digest.weekly",
        "from": start.isoformat(),
        "to": (today - timedelta(days=1)).isoformat(),
        "cost_by_team_and_feature": [
            {
                "tenant": row["tenant__slug"],
                "team": row["team__slug"],
                "feature": row["feature"],
                "cost_usd": _money(row["cost"]),
                "requests": row["requests"],
            }
            for row in by_feature
        ],
        "compliance": {
            "pii_findings": dict(pii),
            "rejections": [
                {"tenant": r["tenant__slug"], "code": r["error_type"], "count": r["n"]}
                for r in rejections
            ],
        },
    }


def digest_deliver(digest: dict[str, Any], config: AlertSettings | None = None) -> list[str]:
    config = config or settings.GATEWAY_ALERTS
    outcomes = []
    for url in config.webhook_urls:
        try:
            outcomes.append(f"http {httpx.post(url, json=digest, timeout=10).status_code}")
        except httpx.HTTPError as exc:
            logger.error("digest webhook %s failed: %s", url, exc)
            outcomes.append(f"failed: {type(exc).__name__}")
    logger.info("%s delivered: %s", digest["event"], outcomes or "no webhook configured")
    return outcomes

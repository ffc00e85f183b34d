"""Tier 1 signals of the audit records: each detector returns the conditions present now.

A condition is (rule, subject, tenant id, message, context). Detectors read a short window of
records (a few minutes) and, for baselines, aggregates of earlier windows: their cost follows the
window's traffic, not the table's size (the records are indexed by tenant and time).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Sum

from audit.models import AuditStatus
from audit.observability.alert_settings import AlertSettings
from billing.records import records_between
from billing.rollups import Percentile
from tenants.models import Team, Tenant
from tenants.quotas.core.windows import window_at

logger = logging.getLogger(__name__)

# Limits and budgets refusals (tenants/quotas/responses.py): any one of them is worth an alert.
LIMIT_CODES = ("rate_limit_exceeded", "request_exceeds_limit", "budget_exceeded")
# Attempt outcomes that are not the provider's fault.
_NOT_PROVIDER = ("", "cooling_down", "provider_capacity")


@dataclass(frozen=True, slots=True)
class Condition:
    rule: str
    subject: str
    tenant_id: int | None
    message: str
    context: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def provider_errors(now: datetime, config: AlertSettings) -> list[Condition]:
    since = now - timedelta(minutes=config.window_minutes)
    tried: dict[tuple[str, str], int] = defaultdict(int)
    failed: dict[tuple[str, str], int] = defaultdict(int)
    causes: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    records = records_between(since, now).exclude(attempts=[])
    for attempts in records.values_list("attempts", flat=True).iterator(chunk_size=2000):
        for attempt in attempts:
            if attempt.get("error") == "cooling_down":
                continue
            key = (attempt.get("deployment", ""), attempt.get("provider", ""))
            tried[key] += 1
            if (cause := attempt.get("error") or "") not in _NOT_PROVIDER:
                failed[key] += 1
                causes[key][cause] += 1
    conditions = []
    for key, count in tried.items():
        rate = failed[key] / count
        if count >= config.error_min_attempts and rate > config.error_rate:
            deployment, provider = key
            conditions.append(
                Condition(
                    "provider_error_rate",
                    f"deployment:{deployment}",
                    None,
                    f"{deployment} ({provider}): {rate:.0%} of {count} attempts failed in the "
                    f"last {config.window_minutes} min (threshold {config.error_rate:.0%})",
                    {"attempts": count, "failed": failed[key], "rate": round(rate, 4)}
                    | {"causes": dict(causes[key])},
                )
            )
    return conditions


def limit_rejections(now: datetime, config: AlertSettings) -> list[Condition]:
    since = now - timedelta(minutes=config.window_minutes)
    rows = (
        records_between(since, now)
        .filter(
            status=AuditStatus.REJECTED,
            error_type__in=LIMIT_CODES,
        )
        .values("tenant_id", "team_id", "tenant__slug", "team__slug", "error_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_team: dict[tuple[int, int], dict[str, Any]] = {}
    for row in rows:
        entry = by_team.setdefault(
            (row["tenant_id"], row["team_id"]),
            {"tenant": row["tenant__slug"], "team": row["team__slug"], "codes": {}},
        )
        entry["codes"][row["error_type"]] = row["n"]
    return [
        Condition(
            "limit_rejections",
            f"team:{team_id}",
            tenant_id,
            f"{info['tenant']}/{info['team']}: {sum(info['codes'].values())} request(s) refused "
            f"by limits or budgets in the last {config.window_minutes} min",
            info,
        )
        for (tenant_id, team_id), info in by_team.items()
    ]


def limits_unchecked(now: datetime, config: AlertSettings) -> list[Condition]:
    """Requests served without their limits checked (the counters were down and the tenant's
    policy is to serve): each one is worth an alert, per tenant."""
    since = now - timedelta(minutes=config.window_minutes)
    rows = (
        records_between(since, now)
        .filter(quota__store__startswith="unavailable")
        .values("tenant_id", "tenant__slug")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        Condition(
            "limits_unchecked",
            f"tenant:{row['tenant_id']}",
            row["tenant_id"],
            f"{row['tenant__slug']}: {row['n']} request(s) served without their limits checked "
            f"in the last {config.window_minutes} min (the limit counters were unavailable and "
            "the tenant's policy is to serve)",
            {"tenant": row["tenant__slug"], "requests": row["n"]},
        )
        for row in rows
    ]


def _team_cost(start: datetime, end: datetime) -> dict[int, Decimal]:
    rows = records_between(start, end).values("team_id").annotate(cost=Sum("cost_usd")).order_by()
    return {row["team_id"]: row["cost"] or Decimal(0) for row in rows}


def cost_spikes(now: datetime, config: AlertSettings) -> list[Condition]:
    """A team's spend over the last hour against the same hour of the previous days."""
    hour = timedelta(hours=1)
    current = _team_cost(now - hour, now)
    baseline: dict[int, Decimal] = defaultdict(Decimal)
    for day in range(1, config.baseline_days + 1):
        for team_id, cost in _team_cost(
            now - timedelta(days=day) - hour, now - timedelta(days=day)
        ).items():
            baseline[team_id] += cost / config.baseline_days
    teams = {t.id: t for t in Team.objects.filter(id__in=current).select_related("tenant")}
    conditions = []
    for team_id, cost in current.items():
        usual = baseline.get(team_id, Decimal(0))
        if cost >= Decimal(str(config.cost_spike_min_usd)) and cost > usual * Decimal(
            str(config.cost_spike_factor)
        ):
            conditions.append(
                Condition(
                    "cost_spike",
                    f"team:{team_id}",
                    teams[team_id].tenant_id,
                    f"{teams[team_id].tenant.slug}/{teams[team_id].slug} spent ${cost:.2f} in the "
                    f"last hour; the same hour usually "
                    f"costs ${usual:.2f} (threshold x{config.cost_spike_factor})",
                    {"cost_usd": f"{cost:.6f}", "baseline_usd": f"{usual:.6f}"},
                )
            )
    return conditions


def is_pii(finding: object) -> bool:
    if not isinstance(finding, dict):
        return False
    # routing/guardrails/core/checks.py names the check ("pii"); other producers may say kind or type.
    label = str(finding.get("check") or finding.get("kind") or finding.get("type") or "")
    return label.lower().startswith("pii")


def _pii_counts(start: datetime, end: datetime) -> tuple[dict[int, int], dict[int, int]]:
    """Per tenant: requests, and requests with at least one PII finding."""
    records = records_between(start, end)
    totals = dict(records.values_list("tenant_id").annotate(n=Count("id")).order_by())
    with_pii: dict[int, int] = defaultdict(int)
    flagged = records.exclude(guardrail_findings=[]).values_list("tenant_id", "guardrail_findings")
    for tenant_id, findings in flagged.iterator(chunk_size=2000):
        if any(is_pii(f) for f in findings):
            with_pii[tenant_id] += 1
    return totals, with_pii


def pii_spikes(now: datetime, config: AlertSettings) -> list[Condition]:
    """The share of a tenant's requests carrying PII, against the trailing day's share."""
    since = now - timedelta(minutes=config.window_minutes)
    totals, with_pii = _pii_counts(since, now)
    base_totals, base_pii = _pii_counts(since - timedelta(days=1), since)
    slugs = dict(Tenant.objects.filter(id__in=with_pii).values_list("id", "slug"))
    conditions = []
    for tenant_id, count in with_pii.items():
        rate = count / totals[tenant_id]
        usual = (
            base_pii.get(tenant_id, 0) / base_totals[tenant_id]
            if base_totals.get(tenant_id)
            else 0.0
        )
        if count >= config.pii_min_findings and rate > usual * config.pii_spike_factor:
            conditions.append(
                Condition(
                    "pii_spike",
                    f"tenant:{tenant_id}",
                    tenant_id,
                    f"{slugs.get(tenant_id, tenant_id)}: {rate:.0%} of requests carried PII in the last "
                    f"{config.window_minutes} min; usually {usual:.1%}",
                    {"requests": totals[tenant_id], "with_pii": count, "rate": round(rate, 4)}
                    | {"baseline_rate": round(usual, 4)},
                )
            )
    return conditions


def latency_p99(now: datetime, config: AlertSettings) -> list[Condition]:
    if connection.vendor != "postgresql":
        return []  # percentile_cont is PostgreSQL's
    since = now - timedelta(minutes=config.window_minutes)
    stats = (
        records_between(since, now)
        .filter(latency_ms__isnull=False)
        .aggregate(n=Count("id"), p99=Percentile("latency_ms", 0.99))
    )
    if stats["n"] < config.latency_min_requests or stats["p99"] <= config.latency_p99_ms:
        return []
    return [
        Condition(
            "latency_p99",
            "gateway",
            None,
            f"gateway p99 latency {stats['p99']:.0f} ms over {stats['n']} requests in the last "
            f"{config.window_minutes} min (threshold {config.latency_p99_ms:.0f} ms)",
            {"p99_ms": round(stats["p99"], 1), "requests": stats["n"]},
        )
    ]


def budget_warnings(now: datetime, config: AlertSettings) -> list[Condition]:
    """Budgets past an early-warning threshold (quotas raises them), while the window lasts."""
    from tenants.quotas.models import BudgetAlert

    conditions = []
    recent = BudgetAlert.objects.filter(
        window_start__gte=now - timedelta(days=32), window_start__lte=now
    ).select_related("budget", "budget__tenant", "budget__team", "budget__api_key")
    for alert in recent:
        budget = alert.budget
        # The window's end in the budget's own time zone, as the counters compute it (a month
        # added to a UTC instant is not the window's end east of UTC, nor always a date).
        if now >= window_at(budget.period, budget.timezone, alert.window_start).end:
            continue
        who = f" for end user {alert.end_user}" if alert.end_user else ""
        conditions.append(
            Condition(
                "budget_threshold",
                # One alert per threshold: reaching 80% notifies again after 50% did.
                f"budget:{budget.id}:{alert.window_start:%Y-%m-%d}:{alert.end_user}"
                f":{alert.threshold_pct}",
                budget.tenant_id,
                f"{budget}{who} reached {alert.threshold_pct}% of ${budget.amount_usd}",
                {"budget_id": budget.id, "threshold_pct": alert.threshold_pct}
                | {"amount_usd": str(budget.amount_usd), "period": budget.period},
            )
        )
    return conditions


# Each detector and the rules it raises.
DETECTORS: tuple[tuple[Callable[[datetime, AlertSettings], list[Condition]], str], ...] = (
    (provider_errors, "provider_error_rate"),
    (limit_rejections, "limit_rejections"),
    (limits_unchecked, "limits_unchecked"),
    (cost_spikes, "cost_spike"),
    (pii_spikes, "pii_spike"),
    (latency_p99, "latency_p99"),
    (budget_warnings, "budget_threshold"),
)


def current_conditions(now: datetime, config: AlertSettings) -> tuple[list[Condition], set[str]]:
    """What fires now, and the rules whose detector failed: one bad row stops its own detector,
    never the others, and its alerts are neither opened nor resolved until it runs again."""
    conditions: list[Condition] = []
    failed: set[str] = set()
    for detect, rule in DETECTORS:
        try:
            conditions += detect(now, config)
        except Exception:
            logger.exception(
                "alerts: the %s detector failed; its alerts are left as they are", rule
            )
            failed.add(rule)
    return conditions, failed

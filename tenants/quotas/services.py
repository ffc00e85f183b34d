"""Writes for rate limits, budgets and quota policies. Console, management API and YAML call these."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.activity.services import SYSTEM, Actor, activity_record
from tenants.models import ApiKey, Team, Tenant
from tenants.quotas.models import (
    DEFAULT_ALERT_THRESHOLDS_PCT,
    EACH_AGENT,
    EACH_USER,
    ApprovalRule,
    Budget,
    LimitScope,
    QuotaPolicy,
    RateLimit,
    Scope,
    thresholds_checked,
)


def _scope_fields(
    *, tenant: Tenant, scope: str, team: Team | None, api_key: ApiKey | None, end_user: str
) -> dict[str, Any]:
    if scope not in Scope.values:
        raise ValidationError(
            f"unknown scope {scope!r}: a budget applies to a tenant, team, key or end user "
            "(agents have rate limits, not budgets: the spend ledger keeps no agent)"
        )
    if scope == Scope.TEAM and (team is None or team.tenant_id != tenant.pk):
        raise ValidationError("a team limit needs a team of the same tenant")
    if scope == Scope.KEY and (api_key is None or api_key.tenant_id != tenant.pk):
        raise ValidationError("a key limit needs a key of the same tenant")
    if scope == Scope.USER and not end_user:
        raise ValidationError(f"an end-user limit needs an end user id, or {EACH_USER!r} for each")
    return {
        "tenant": tenant,
        "scope": scope,
        "team": team if scope == Scope.TEAM else None,
        "api_key": api_key if scope == Scope.KEY else None,
        "end_user": end_user if scope == Scope.USER else "",
    }


@transaction.atomic
def rate_limit_set(
    *,
    tenant: Tenant,
    scope: str,
    team: Team | None = None,
    api_key: ApiKey | None = None,
    end_user: str = "",
    agent: str = "",
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    max_concurrent: int | None = None,
    shadow: bool = False,
    actor: Actor = SYSTEM,
) -> RateLimit:
    if scope == LimitScope.AGENT:
        if not agent:
            raise ValidationError(f"an agent limit needs an agent name, or {EACH_AGENT!r} for each")
        where: dict[str, Any] = {"tenant": tenant, "scope": scope, "agent": agent}
        where.update(team=None, api_key=None, end_user="")
    else:
        where = _scope_fields(
            tenant=tenant, scope=scope, team=team, api_key=api_key, end_user=end_user
        )
        where["agent"] = ""
    limit, created = RateLimit.objects.update_or_create(
        **where,
        defaults={
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
            "max_concurrent": max_concurrent,
            "shadow": shadow,
        },
    )
    activity_record(
        actor=actor,
        action="limit.create" if created else "limit.update",
        target=limit,
        tenant_id=tenant.pk,
        details={
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
            "max_concurrent": max_concurrent,
            "shadow": shadow,
        },
    )
    return limit


@transaction.atomic
def budget_set(
    *,
    tenant: Tenant,
    scope: str,
    amount_usd: Decimal,
    period: str = "month",
    timezone: str = "UTC",
    alert_thresholds_pct: list[int] | None = None,
    team: Team | None = None,
    api_key: ApiKey | None = None,
    end_user: str = "",
    shadow: bool = False,
    actor: Actor = SYSTEM,
) -> Budget:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown timezone {timezone!r}") from None
    if amount_usd < 0:
        raise ValidationError("a budget cannot be negative")
    try:
        thresholds = thresholds_checked(
            list(
                DEFAULT_ALERT_THRESHOLDS_PCT
                if alert_thresholds_pct is None
                else alert_thresholds_pct
            )
        )
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    where = _scope_fields(tenant=tenant, scope=scope, team=team, api_key=api_key, end_user=end_user)
    budget, created = Budget.objects.update_or_create(
        **where,
        period=period,
        defaults={
            "amount_usd": amount_usd,
            "timezone": timezone,
            "alert_thresholds_pct": thresholds,
            "shadow": shadow,
        },
    )
    activity_record(
        actor=actor,
        action="budget.create" if created else "budget.update",
        target=budget,
        tenant_id=tenant.pk,
        details={
            "amount_usd": str(amount_usd),
            "period": period,
            "timezone": timezone,
            "alert_thresholds_pct": thresholds,
            "shadow": shadow,
        },
    )
    return budget


@transaction.atomic
def rule_remove(*, rule: RateLimit | Budget, actor: Actor = SYSTEM) -> None:
    action = "limit.delete" if isinstance(rule, RateLimit) else "budget.delete"
    activity_record(actor=actor, action=action, target=rule, tenant_id=rule.tenant_id)
    rule.delete()


@transaction.atomic
def quota_policy_set(
    *,
    tenant: Tenant,
    on_store_failure_limits: str = "open",
    on_store_failure_budgets: str = "closed",
    max_request_cost_usd: Decimal | None = None,
    over_ceiling: str = "reject",
    downgrade_route: str = "",
    default_max_tokens: int = 4096,
    actor: Actor = SYSTEM,
) -> QuotaPolicy:
    if over_ceiling == "downgrade" and not downgrade_route:
        raise ValidationError("downgrading over the ceiling needs a downgrade route")
    policy, _ = QuotaPolicy.objects.update_or_create(
        tenant=tenant,
        defaults={
            "on_store_failure_limits": on_store_failure_limits,
            "on_store_failure_budgets": on_store_failure_budgets,
            "max_request_cost_usd": max_request_cost_usd,
            "over_ceiling": over_ceiling,
            "downgrade_route": downgrade_route,
            "default_max_tokens": default_max_tokens,
        },
    )
    activity_record(
        actor=actor,
        action="quota_policy.update",
        target=policy,
        tenant_id=tenant.pk,
        details={
            "on_store_failure_limits": on_store_failure_limits,
            "on_store_failure_budgets": on_store_failure_budgets,
            "max_request_cost_usd": None
            if max_request_cost_usd is None
            else str(max_request_cost_usd),
            "over_ceiling": over_ceiling,
            "downgrade_route": downgrade_route,
        },
    )
    return policy


def key_rules_carry(*, key: ApiKey, successor: ApiKey, **_: Any) -> None:
    """A rotated key's successor is held to the same key-level limits, budgets and cost
    approvals (tenants.signals.key_rotated). A budget's window counts its predecessors' spend
    (ledger.window_spend), so a rotation does not start it over."""
    for model in (RateLimit, Budget, ApprovalRule):
        for rule in model.objects.filter(scope=Scope.KEY, api_key=key):
            rule.pk = None
            rule.api_key = successor
            rule.save()

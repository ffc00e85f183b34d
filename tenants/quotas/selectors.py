"""Reads of limits and budgets, always scoped to one tenant (and key or team where asked)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone

from tenants.models import ApiKey, Tenant
from tenants.quotas.core.windows import window_at
from tenants.quotas.ledger import window_spend
from tenants.quotas.models import Budget, QuotaPolicy, RateLimit, Scope
from tenants.quotas.table import budget_rule


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    label: str
    amount_usd: Decimal
    spent_usd: Decimal
    renews_at: datetime
    shadow: bool

    @property
    def remaining_usd(self) -> Decimal:
        return max(Decimal(0), self.amount_usd - self.spent_usd)

    @property
    def used_pct(self) -> int:
        return int(self.spent_usd * 100 / self.amount_usd) if self.amount_usd else 100


def rate_limits_for_tenant(*, tenant_id: int) -> QuerySet[RateLimit]:
    return RateLimit.objects.filter(tenant_id=tenant_id).select_related("team", "api_key")


def budgets_for_tenant(*, tenant_id: int) -> QuerySet[Budget]:
    return Budget.objects.filter(tenant_id=tenant_id).select_related("team", "api_key")


def rate_limit_of_tenant(*, tenant_id: int, limit_id: int) -> QuerySet[RateLimit]:
    return RateLimit.objects.filter(tenant_id=tenant_id, pk=limit_id)


def budget_of_tenant(*, tenant_id: int, budget_id: int) -> QuerySet[Budget]:
    return Budget.objects.filter(tenant_id=tenant_id, pk=budget_id)


def quota_policy_of(*, tenant: Tenant) -> QuotaPolicy:
    """The tenant's policy; not stored until first set, so the defaults the gateway applies."""
    return QuotaPolicy.objects.filter(tenant=tenant).first() or QuotaPolicy(tenant=tenant)


def _applying_to_key(key: ApiKey) -> Q:
    return (
        Q(scope=Scope.TENANT)
        | Q(scope=Scope.TEAM, team_id=key.team_id)
        | Q(scope=Scope.KEY, api_key_id=key.pk)
    )


def rate_limits_for_key(*, key: ApiKey) -> QuerySet[RateLimit]:
    """The tenant, team and key limits a key's requests must fit (end-user limits come on top)."""
    return rate_limits_for_tenant(tenant_id=key.tenant_id).filter(_applying_to_key(key))


def budget_status(
    *, budget: Budget, end_user: str = "", now: datetime | None = None
) -> BudgetStatus:
    """Spend in the budget's current window, from the ledger (settled requests only)."""
    window = window_at(budget.period, budget.timezone, now or timezone.now())
    rule = budget_rule(budget)
    return BudgetStatus(
        label=str(budget),
        amount_usd=budget.amount_usd,
        spent_usd=window_spend(rule, end_user, window),
        renews_at=window.end,
        shadow=budget.shadow,
    )


def budgets_for_key(*, key: ApiKey) -> list[BudgetStatus]:
    return [
        budget_status(budget=budget)
        for budget in budgets_for_tenant(tenant_id=key.tenant_id).filter(_applying_to_key(key))
    ]

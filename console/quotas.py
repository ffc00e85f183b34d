"""A key's limits and remaining budget, as the quotas engine will apply them to its requests.

Reads the rules of the scopes a key's request always belongs to (its tenant, team and the key
itself); budgets are summed from the quotas spend ledger for the current window. End-user
quotas depend on the caller's `user` field and are only mentioned.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from quotas.core.windows import window_at
from quotas.ledger import window_spend
from quotas.models import Budget, RateLimit, Scope
from quotas.table import BudgetRule
from tenants.models import ApiKey


@dataclass(frozen=True, slots=True)
class BudgetLeft:
    label: str
    amount_usd: Decimal
    spent_usd: Decimal
    resets_at: str
    shadow: bool

    @property
    def left_usd(self) -> Decimal:
        return max(self.amount_usd - self.spent_usd, Decimal(0))


@dataclass(frozen=True, slots=True)
class KeyLimits:
    limits: tuple[str, ...] = ()
    budgets: tuple[BudgetLeft, ...] = ()
    end_user_rules: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.limits or self.budgets or self.end_user_rules)


def _scopes(key: ApiKey) -> Q:
    return Q(tenant_id=key.tenant_id) & (
        Q(scope=Scope.TENANT)
        | Q(scope=Scope.TEAM, team_id=key.team_id)
        | Q(scope=Scope.KEY, api_key_id=key.pk)
    )


def _limit_line(limit: RateLimit) -> str:
    parts = [
        f"{limit.requests_per_minute} requests/min" if limit.requests_per_minute else "",
        f"{limit.tokens_per_minute:,} tokens/min" if limit.tokens_per_minute else "",
        f"{limit.max_concurrent} at once" if limit.max_concurrent else "",
    ]
    shadow = " (shadow: measured, not enforced)" if limit.shadow else ""
    return f"Rate limit of {limit.scope_label()}: {', '.join(p for p in parts if p)}{shadow}"


def _budget_left(budget: Budget) -> BudgetLeft:
    rule = BudgetRule(
        id=budget.pk,
        scope=budget.scope,
        label=str(budget),
        amount_usd=budget.amount_usd,
        period=budget.period,
        timezone=budget.timezone,
        soft_threshold_pct=budget.soft_threshold_pct,
        shadow=budget.shadow,
        tenant_id=budget.tenant_id,
        team_id=budget.team_id if budget.scope == Scope.TEAM else None,
        api_key_id=budget.api_key_id if budget.scope == Scope.KEY else None,
        per_user=False,
    )
    window = window_at(budget.period, budget.timezone, timezone.now())
    return BudgetLeft(
        label=str(budget).capitalize(),
        amount_usd=budget.amount_usd,
        spent_usd=window_spend(rule, "", window),
        resets_at=f"{window.end:%Y-%m-%d %H:%M} {budget.timezone}",
        shadow=budget.shadow,
    )


def limits_for_key(key: ApiKey) -> KeyLimits:
    limits = RateLimit.objects.filter(_scopes(key)).select_related("tenant", "team", "api_key")
    budgets = Budget.objects.filter(_scopes(key)).select_related("tenant", "team", "api_key")
    end_user = (
        RateLimit.objects.filter(tenant_id=key.tenant_id, scope=Scope.USER).exists()
        or Budget.objects.filter(tenant_id=key.tenant_id, scope=Scope.USER).exists()
    )
    return KeyLimits(
        limits=tuple(_limit_line(limit) for limit in limits),
        budgets=tuple(_budget_left(budget) for budget in budgets),
        end_user_rules=end_user,
    )

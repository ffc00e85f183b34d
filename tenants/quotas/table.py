"""The limits, budgets and policies in force, held in memory per worker and refreshed in the
background, so admitting a request asks the database nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tenants.quotas.core.windows import Window
from tenants.quotas.models import (
    EACH_AGENT,
    EACH_USER,
    ApprovalRule,
    Budget,
    LimitScope,
    QuotaPolicy,
    RateLimit,
    Scope,
)


@dataclass(frozen=True, slots=True)
class LimitRule:
    id: int
    scope: str
    label: str
    requests_per_minute: int | None
    tokens_per_minute: int | None
    max_concurrent: int | None
    shadow: bool


@dataclass(frozen=True, slots=True)
class BudgetRule:
    id: int
    scope: str
    label: str
    amount_usd: Decimal
    period: str
    timezone: str
    alert_thresholds_pct: tuple[int, ...]  # ascending
    shadow: bool
    # What the ledger is filtered by to sum this budget's spend (see tenants/quotas/ledger.py).
    tenant_id: int
    team_id: int | None
    api_key_id: int | None
    per_user: bool  # scope "user": spend is counted per end user


@dataclass(frozen=True, slots=True)
class PolicyRule:
    limits_fail_open: bool = True
    budgets_fail_open: bool = False
    max_request_cost_usd: Decimal | None = None
    downgrade_route: str = ""  # empty: over the ceiling is rejected
    default_max_tokens: int = 4096


DEFAULT_POLICY = PolicyRule()


@dataclass(frozen=True, slots=True)
class ApprovalThreshold:
    """Cost pre-approval for one scope (tenants/quotas/approvals.py)."""

    id: int
    scope: str
    label: str
    threshold_usd: Decimal
    shadow: bool


# A scope's address in the table: ("tenant", id), ("team", id), ("key", id),
# ("user", tenant id, end user or "*").
ScopeKey = tuple[str, int] | tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class QuotaTable:
    limits: dict[ScopeKey, LimitRule] = field(default_factory=dict)
    budgets: dict[ScopeKey, tuple[BudgetRule, ...]] = field(default_factory=dict)
    policies: dict[int, PolicyRule] = field(default_factory=dict)
    approvals: dict[ScopeKey, ApprovalThreshold] = field(default_factory=dict)

    def scopes(
        self, tenant_id: int, team_id: int, key_id: int, end_user: str, agent: str = ""
    ) -> list[tuple[ScopeKey, str]]:
        """Every scope a request belongs to, with the id its counters are kept under."""
        found: list[tuple[ScopeKey, str]] = [
            (("tenant", tenant_id), f"t{tenant_id}"),
            (("team", team_id), f"tm{team_id}"),
            (("key", key_id), f"k{key_id}"),
        ]
        if end_user:
            user_id = f"u{tenant_id}:{end_user}"
            found += [
                (("user", tenant_id, end_user), user_id),
                (("user", tenant_id, EACH_USER), user_id),
            ]
        if agent:  # rate limits only (budgets have no agent scope)
            agent_id = f"a{tenant_id}:{agent}"
            found += [
                (("agent", tenant_id, agent), agent_id),
                (("agent", tenant_id, EACH_AGENT), agent_id),
            ]
        return found

    def policy(self, tenant_id: int) -> PolicyRule:
        return self.policies.get(tenant_id, DEFAULT_POLICY)

    def approval(self, tenant_id: int, team_id: int, key_id: int) -> ApprovalThreshold | None:
        """The most specific pre-approval rule that applies: the key's, its team's, the tenant's."""
        for scope in (("key", key_id), ("team", team_id), ("tenant", tenant_id)):
            if (rule := self.approvals.get(scope)) is not None:
                return rule
        return None


def _scope_key(rule: RateLimit | Budget | ApprovalRule) -> ScopeKey:
    if rule.scope == Scope.TEAM:
        assert rule.team_id is not None
        return ("team", rule.team_id)
    if rule.scope == Scope.KEY:
        assert rule.api_key_id is not None
        return ("key", rule.api_key_id)
    if rule.scope == Scope.USER:
        return ("user", rule.tenant_id, rule.end_user)
    if isinstance(rule, RateLimit) and rule.scope == LimitScope.AGENT:
        return ("agent", rule.tenant_id, rule.agent)
    return ("tenant", rule.tenant_id)


def budget_rule(budget: Budget) -> BudgetRule:
    return BudgetRule(
        id=budget.pk,
        scope=budget.scope,
        label=str(budget),
        amount_usd=budget.amount_usd,
        period=budget.period,
        timezone=budget.timezone,
        alert_thresholds_pct=tuple(sorted(budget.alert_thresholds_pct)),
        shadow=budget.shadow,
        tenant_id=budget.tenant_id,
        team_id=budget.team_id if budget.scope == Scope.TEAM else None,
        api_key_id=budget.api_key_id if budget.scope == Scope.KEY else None,
        per_user=budget.scope == Scope.USER,
    )


def load_quota_table() -> QuotaTable:
    limits: dict[ScopeKey, LimitRule] = {}
    for limit in RateLimit.objects.select_related("tenant", "team", "api_key"):
        limits[_scope_key(limit)] = LimitRule(
            id=limit.id,
            scope=limit.scope,
            label=limit.scope_label(),
            requests_per_minute=limit.requests_per_minute,
            tokens_per_minute=limit.tokens_per_minute,
            max_concurrent=limit.max_concurrent,
            shadow=limit.shadow,
        )
    budgets: dict[ScopeKey, list[BudgetRule]] = {}
    for budget in Budget.objects.select_related("tenant", "team", "api_key"):
        budgets.setdefault(_scope_key(budget), []).append(budget_rule(budget))
    policies = {
        policy.tenant_id: PolicyRule(
            limits_fail_open=policy.on_store_failure_limits == "open",
            budgets_fail_open=policy.on_store_failure_budgets == "open",
            max_request_cost_usd=policy.max_request_cost_usd,
            downgrade_route=policy.downgrade_route if policy.over_ceiling == "downgrade" else "",
            default_max_tokens=policy.default_max_tokens,
        )
        for policy in QuotaPolicy.objects.all()
    }
    approvals = {
        _scope_key(rule): ApprovalThreshold(
            id=rule.pk,
            scope=rule.scope,
            label=rule.scope_label(),
            threshold_usd=rule.threshold_usd,
            shadow=rule.shadow,
        )
        for rule in ApprovalRule.objects.select_related("tenant", "team", "api_key")
    }
    return QuotaTable(
        limits=limits,
        budgets={key: tuple(rules) for key, rules in budgets.items()},
        policies=policies,
        approvals=approvals,
    )


@dataclass(frozen=True, slots=True)
class Meter:
    """What a check measures, for headers, errors and the audit record."""

    kind: str  # requests | tokens | concurrent | budget
    label: str  # e.g. "team 'advisors'"
    limit: int
    shadow: bool
    budget: BudgetRule | None = None
    window: Window | None = None

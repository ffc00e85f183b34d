"""Limits, budgets and quota policies in the declarative YAML (docs/config.md#limits-and-budgets)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, field_validator

from audit.activity.services import CONFIG
from gateway_site.bounds import INT_MAX, StorableInput
from tenants.models import ApiKey, Team, Tenant
from tenants.quotas import approvals, services
from tenants.quotas.models import LimitScope, Scope, thresholds_checked


class _Strict(StorableInput):
    model_config = ConfigDict(extra="forbid")


class LimitSpec(_Strict):
    requests_per_minute: int | None = Field(default=None, ge=1, le=INT_MAX)
    tokens_per_minute: int | None = Field(default=None, ge=1, le=INT_MAX)
    max_concurrent: int | None = Field(default=None, ge=1, le=INT_MAX)
    shadow: bool = False


class BudgetSpec(_Strict):
    amount_usd: Decimal = Field(ge=0, max_digits=14, decimal_places=4)  # the column's numeric
    period: Literal["day", "week", "month"] = "month"
    timezone: str = Field(default="UTC", max_length=64)
    alert_thresholds_pct: list[int] = Field(default=[50, 80, 95], min_length=1, max_length=5)
    shadow: bool = False

    @field_validator("alert_thresholds_pct")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        return thresholds_checked(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name such as Europe/Paris)"
            ) from None
        return value


class CostApprovalSpec(_Strict):
    """Hold a request predicted to cost more than this until a budget owner approves it
    (tenants/quotas/approvals.py)."""

    threshold_usd: Decimal = Field(ge=0, max_digits=12, decimal_places=4)
    shadow: bool = False


class ProviderCapacitySpec(_Strict):
    requests_per_minute: int | None = Field(default=None, ge=1, le=INT_MAX)
    tokens_per_minute: int | None = Field(default=None, ge=1, le=INT_MAX)
    queue_seconds: float = Field(default=0, ge=0, le=60)


class EndUserQuotaSpec(_Strict):
    id: str = Field(min_length=1, max_length=200)  # "*": each end user, separately
    limits: LimitSpec | None = None
    budgets: list[BudgetSpec] = []


class AgentQuotaSpec(_Strict):
    """An agent's rate limits (routing/agent_identity.py); "*": each agent, separately. No
    budgets: the spend ledger they are summed from keeps no agent."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    limits: LimitSpec

    @field_validator("name")
    @classmethod
    def _as_matched(cls, value: str) -> str:
        # The proxy strips the name it reads, so a padded one would never match a request.
        if value != value.strip():
            raise ValueError("an agent's name has no leading or trailing spaces")
        return value


class QuotaPolicySpec(_Strict):
    on_store_failure_limits: Literal["open", "closed"] = "open"
    on_store_failure_budgets: Literal["open", "closed"] = "closed"
    max_request_cost_usd: Decimal | None = Field(
        default=None, gt=0, max_digits=12, decimal_places=4
    )
    over_ceiling: Literal["reject", "downgrade"] = "reject"
    downgrade_route: str = Field(default="", max_length=128)
    default_max_tokens: int = Field(default=4096, ge=1, le=INT_MAX)


def apply_rules(
    *,
    tenant: Tenant,
    scope: str,
    limits: LimitSpec | None,
    budgets: list[BudgetSpec],
    team: Team | None = None,
    api_key: ApiKey | None = None,
    end_user: str = "",
    cost_approval: CostApprovalSpec | None = None,
) -> None:
    if cost_approval is not None:
        approvals.approval_rule_set(
            tenant=tenant,
            scope=scope,
            team=team,
            api_key=api_key,
            threshold_usd=cost_approval.threshold_usd,
            shadow=cost_approval.shadow,
            actor=CONFIG,
        )
    where = {
        "tenant": tenant,
        "scope": scope,
        "team": team,
        "api_key": api_key,
        "end_user": end_user,
    }
    if limits is not None:
        services.rate_limit_set(**where, **limits.model_dump(), actor=CONFIG)  # type: ignore[arg-type]
    for budget in budgets:
        services.budget_set(**where, **budget.model_dump(), actor=CONFIG)  # type: ignore[arg-type]


def apply_tenant_quotas(
    *,
    tenant: Tenant,
    policy: QuotaPolicySpec | None,
    limits: LimitSpec | None,
    budgets: list[BudgetSpec],
    end_users: list[EndUserQuotaSpec],
    cost_approval: CostApprovalSpec | None = None,
    agents: list[AgentQuotaSpec] | None = None,
) -> None:
    if policy is not None:
        services.quota_policy_set(tenant=tenant, **policy.model_dump(), actor=CONFIG)
    apply_rules(
        tenant=tenant,
        scope=Scope.TENANT,
        limits=limits,
        budgets=budgets,
        cost_approval=cost_approval,
    )
    for user in end_users:
        apply_rules(
            tenant=tenant,
            scope=Scope.USER,
            limits=user.limits,
            budgets=user.budgets,
            end_user=user.id,
        )
    for agent in agents or ():
        services.rate_limit_set(
            tenant=tenant,
            scope=LimitScope.AGENT,
            agent=agent.name,
            **agent.limits.model_dump(),
            actor=CONFIG,
        )

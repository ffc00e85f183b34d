"""Bodies of the limits, budgets and quota policy API (tenants/quotas/api.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from ninja import Field

from gateway_site.api.schemas import BodyOut
from gateway_site.bounds import BIGINT_MAX, StorableInput
from tenants.quotas.declared import BudgetSpec, LimitSpec, QuotaPolicySpec

# --- limits, budgets, quota policy (the same validation as the YAML: tenants/quotas/declared.py) ----------


class _RuleScope(StorableInput):
    scope: Literal["tenant", "team", "key", "user"] = Field(
        description="Whom the rule applies to: the tenant, one team, one key, or end users."
    )
    team: str | None = Field(
        default=None, max_length=64, description="Team slug, for scope 'team'."
    )
    key_id: int | None = Field(
        default=None, ge=1, le=BIGINT_MAX, description="Key id, for scope 'key'."
    )
    end_user: str = Field(
        default="", max_length=200, description="For scope 'user': an end user id, or '*' for each."
    )


class LimitIn(LimitSpec, _RuleScope):
    scope: Literal["tenant", "team", "key", "user", "agent"] = Field(  # type: ignore[assignment]
        description="Whom the limit applies to: the tenant, one team, one key, end users, or "
        "agents (docs/api.md#agent-identity)."
    )
    agent: str = Field(
        default="",
        max_length=200,
        description="For scope 'agent': an agent's name, or '*' for each.",
    )


class BudgetIn(BudgetSpec, _RuleScope):
    pass


class _RuleOut(BodyOut):
    id: int
    scope: str
    team: str | None = Field(default=None, alias="team.slug")
    key_id: int | None = Field(default=None, alias="api_key_id")
    end_user: str
    shadow: bool
    updated_at: datetime


class LimitOut(_RuleOut):
    agent: str
    requests_per_minute: int | None
    tokens_per_minute: int | None
    max_concurrent: int | None


class BudgetOut(_RuleOut):
    amount_usd: Decimal
    period: str
    timezone: str
    alert_thresholds_pct: list[int]


class QuotaPolicyIn(QuotaPolicySpec):
    pass


class QuotaPolicyOut(BodyOut):
    on_store_failure_limits: str
    on_store_failure_budgets: str
    max_request_cost_usd: Decimal | None
    over_ceiling: str
    downgrade_route: str
    default_max_tokens: int

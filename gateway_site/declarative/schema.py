"""The schema of the declarative configuration file (docs/config.md documents it)."""

from __future__ import annotations

import os
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from routing.core.model_names import alias_problem
from routing.core.translate.responses_tools import hosted_tool_problem
from routing.evaluations.models import CATEGORY_NAME
from routing.guardrails.core.policy import PolicySpec
from routing.mcp_gateway.config import McpServerSpec, McpToolsSpec
from routing.prompts.declared import PromptSpec
from tenants.models import Role
from tenants.quotas.declared import (
    AgentQuotaSpec,
    BudgetSpec,
    CostApprovalSpec,
    EndUserQuotaSpec,
    LimitSpec,
    ProviderCapacitySpec,
    QuotaPolicySpec,
)

_SLUG = r"^[a-z0-9][a-z0-9_-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _listed_once(kind: str, names: list[str]) -> None:
    """Entries are applied in order: a second one of the same name would silently overwrite
    the first, so the file is refused instead."""
    if twice := next((name for name in names if names.count(name) > 1), None):
        raise ValueError(f"{kind} {twice!r} is listed twice; merge its entries into one")


def resolve_secret(value: str | None) -> str | None:
    """`env:NAME` reads the environment variable NAME; anything else is taken literally."""
    if value is None or not value.startswith("env:"):
        return value
    name = value[4:]
    if name not in os.environ:
        raise ValueError(f"environment variable {name} is not set")
    return os.environ[name]


class ProviderSpec(_Strict):
    name: str = Field(pattern=_SLUG, max_length=64)
    # openai-responses: an OpenAI-compatible provider that also serves the Responses API, to
    # which /v1/responses goes natively (docs/api.md#native-or-translated).
    kind: Literal["openai", "anthropic", "openai-responses"]
    base_url: str = Field(pattern=r"^https?://")
    credential: str | None = None
    region: str = ""
    # The account's own rate limits: never exceeded, shared fairly between callers.
    capacity: ProviderCapacitySpec | None = None


class PriceSpec(_Strict):
    input_per_mtok: Decimal = Field(default=Decimal(0), ge=0)
    output_per_mtok: Decimal = Field(default=Decimal(0), ge=0)
    # Versioned by billing (docs/cost.md): a changed price becomes a new version.
    cached_input_per_mtok: Decimal | None = Field(default=None, ge=0)
    per_request_usd: Decimal = Field(default=Decimal(0), ge=0)
    # Provider-run tools, USD per call by the tool's type: `{web_search: "0.01"}`.
    per_tool_call_usd: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
        Annotated[Decimal, Field(ge=0, le=1000, decimal_places=10)],
    ] = Field(default_factory=dict)
    gpu_hour_usd: Decimal | None = Field(default=None, ge=0)
    effective_from: datetime | None = None


class DeploymentSpec(_Strict):
    name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._:-]*$", max_length=128)
    provider: str
    upstream_model: str
    # Absent: the shipped price list's price for the upstream model (billing/data/).
    price: PriceSpec | None = None


class WeightedTarget(_Strict):
    deployment: str
    weight: int = Field(default=1, ge=0)


class RouteSpec(_Strict):
    # A name, or a pattern with `*` (`claude-*`): routing/core/model_names.py, docs/config.md.
    alias: str = Field(min_length=1, max_length=128)
    description: str = ""
    strategy: Literal["ordered", "weighted", "latency", "category"] = "ordered"
    sticky: bool = False
    # Finite: a stored Infinity reads back as a bare `Infinity`, which is not JSON.
    timeout_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    first_token_timeout_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # Responses API tools the provider would run: refuse the request (default) or drop them.
    hosted_tools: Literal["refuse", "drop"] = "refuse"
    # Hosted tool types sent on to a Responses-native deployment of the route (deny by default).
    forward_hosted_tools: list[str] = Field(default=[], max_length=32)
    # Answers served again (docs/caching.md): off, exact repeats, or same meaning too.
    cache: Literal["off", "exact", "semantic"] = "off"
    cache_ttl_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    cache_scope: Literal["tenant", "team", "user"] = "tenant"
    cache_similarity: float | None = Field(default=None, gt=0, le=1)
    # A deployment name (weight 1), or {deployment, weight}; weight 0 makes it a fallback only.
    targets: list[str | WeightedTarget] = Field(min_length=1)

    @field_validator("alias")
    @classmethod
    def _valid_alias(cls, value: str) -> str:
        if problem := alias_problem(value):
            raise ValueError(f"{value!r} is not a valid route alias: {problem}")
        return value

    @field_validator("forward_hosted_tools")
    @classmethod
    def _hosted_tool_types(cls, value: list[str]) -> list[str]:
        if problem := next(filter(None, map(hosted_tool_problem, value)), None):
            raise ValueError(problem)
        return value

    def weighted(self) -> list[WeightedTarget]:
        return [
            t if isinstance(t, WeightedTarget) else WeightedTarget(deployment=t)
            for t in self.targets
        ]


class TaskCategorySpec(_Strict):
    """A kind of task; routes with the category strategy send it to the cheapest good-enough model."""

    name: str = Field(pattern=CATEGORY_NAME)
    description: str = Field(default="", max_length=300)
    threshold: float = Field(ge=0, le=1)
    strict: bool = False
    pattern: str = Field(default="", max_length=500)
    priority: int = Field(default=100, ge=0, le=32767)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class KeySpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    value: str | None = None
    allowed_models: list[str] = []
    model_pins: dict[str, str] = {}  # {model: deployment}; overrides the team's pin
    expires_at: datetime | None = None
    limits: LimitSpec | None = None
    budgets: list[BudgetSpec] = []
    cost_approval: CostApprovalSpec | None = None  # this key's pre-approval threshold
    mcp_tools: list[McpToolsSpec] = []  # narrows the team's (docs/mcp.md)

    @field_validator("value")
    @classmethod
    def _value_looks_like_a_key(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("env:") and len(value) < 20:
            raise ValueError("a key value must be at least 20 characters (or env:VAR)")
        return value


class TeamSpec(_Strict):
    slug: str = Field(pattern=_SLUG, max_length=64)
    name: str
    allowed_models: list[str] = []
    model_pins: dict[str, str] = {}  # {model: deployment or upstream model}, no fallback
    keys: list[KeySpec] = []
    limits: LimitSpec | None = None
    budgets: list[BudgetSpec] = []
    cost_approval: CostApprovalSpec | None = None
    mcp_tools: list[McpToolsSpec] = []  # what the team's keys may call (deny by default)


class UserSpec(_Strict):
    username: str = Field(min_length=1, max_length=150)
    email: str = ""
    role: Role
    teams: list[str] = []
    password: str | None = None


class TenantSpec(_Strict):
    slug: str = Field(pattern=_SLUG, max_length=64)
    name: str
    residency_region: str = ""
    teams: list[TeamSpec] = []
    users: list[UserSpec] = []
    quota_policy: QuotaPolicySpec | None = None
    limits: LimitSpec | None = None
    budgets: list[BudgetSpec] = []
    cost_approval: CostApprovalSpec | None = None  # hold requests predicted above it
    end_users: list[EndUserQuotaSpec] = []
    # Rate limits per calling agent (`name: "*"`: each agent); docs/quotas.md.
    agents: list[AgentQuotaSpec] = []

    @field_validator("agents")
    @classmethod
    def _agents_once(cls, value: list[AgentQuotaSpec]) -> list[AgentQuotaSpec]:
        names = [agent.name for agent in value]
        if twice := next((name for name in names if names.count(name) > 1), None):
            raise ValueError(f"agent {twice!r} is listed twice; give it one set of limits")
        return value

    prompts: list[PromptSpec] = []
    mcp_servers: list[McpServerSpec] = []

    @model_validator(mode="after")
    def _grants_name_known_servers(self) -> TenantSpec:
        servers = {server.name for server in self.mcp_servers}
        for team_spec in self.teams:
            grants = [*team_spec.mcp_tools, *(g for k in team_spec.keys for g in k.mcp_tools)]
            unknown = next((g.server for g in grants if g.server not in servers), None)
            if unknown is not None:
                raise ValueError(
                    f"team {team_spec.slug!r}: mcp_tools names unknown server {unknown!r}"
                )
        return self

    # Days its stored Responses API responses are kept (absent: GATEWAY_RESPONSES_RETENTION_DAYS).
    responses_retention_days: int | None = Field(default=None, ge=1, le=36500)

    @model_validator(mode="after")
    def _users_name_known_teams(self) -> TenantSpec:
        _listed_once("team", [team.slug for team in self.teams])
        _listed_once("user", [user.username for user in self.users])
        known = {team.slug for team in self.teams}
        for user in self.users:
            for team in user.teams:
                if team not in known:
                    raise ValueError(f"user {user.username!r} names unknown team {team!r}")
        return self


class GuardrailAttachSpec(_Strict):
    """Where a guardrail policy applies: one of a tenant, a team, a key, a route."""

    tenant: str | None = None  # tenant slug
    team: str | None = None  # "tenant/team"
    key: str | None = None  # "tenant/key name"
    route: str | None = None  # route alias

    @model_validator(mode="after")
    def _exactly_one(self) -> GuardrailAttachSpec:
        if sum(v is not None for v in (self.tenant, self.team, self.key, self.route)) != 1:
            raise ValueError("name exactly one of tenant, team, key or route")
        for value in (self.team, self.key):
            if value is not None and value.count("/") != 1:
                raise ValueError(f"{value!r}: write it as 'tenant/name'")
        return self


class GuardrailPolicyConfig(PolicySpec):
    """A guardrail policy (docs/guardrails.md) and where it applies."""

    name: str = Field(pattern=_SLUG, max_length=64)
    tenant: str = ""  # the owning tenant's slug; empty for a platform-wide policy
    description: str = ""
    # Recorded, not applied: findings say what the policy would have done (docs/guardrails.md).
    shadow: bool = False
    attach: list[GuardrailAttachSpec] = []

    def policy_spec(self) -> PolicySpec:
        return PolicySpec.model_validate(
            self.model_dump(include=set(PolicySpec.model_fields), exclude_none=True)
        )


class GatewayConfig(_Strict):
    version: Literal[1] = 1
    providers: list[ProviderSpec] = []
    deployments: list[DeploymentSpec] = []
    routes: list[RouteSpec] = []
    task_categories: list[TaskCategorySpec] = []
    tenants: list[TenantSpec] = []
    guardrail_policies: list[GuardrailPolicyConfig] = []

    @model_validator(mode="after")
    def _references_resolve(self) -> GatewayConfig:
        _listed_once("provider", [p.name for p in self.providers])
        _listed_once("deployment", [d.name for d in self.deployments])
        _listed_once("route", [r.alias for r in self.routes])
        _listed_once("tenant", [t.slug for t in self.tenants])
        providers = {p.name for p in self.providers}
        deployments = {d.name for d in self.deployments}
        for deployment in self.deployments:
            if deployment.provider not in providers:
                raise ValueError(
                    f"deployment {deployment.name!r} names unknown provider {deployment.provider!r}"
                )
        for route in self.routes:
            for target in route.weighted():
                if target.deployment not in deployments:
                    raise ValueError(
                        f"route {route.alias!r} names unknown deployment {target.deployment!r}"
                    )
        return self

"""Request and response bodies of the management API. Secrets appear in exactly two places:
the one response that creates a key (`KeyCreated`, `AdminKeyCreated`), and provider credentials
on the way in (never out)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from gateway_site.bounds import BIGINT_MAX, INT_MAX, StorableInput
from tenants.models import Membership, Role
from tenants.quotas.declared import BudgetSpec, LimitSpec, QuotaPolicySpec

SLUG = r"^[a-z0-9][a-z0-9_-]*$"
PINS_HELP = (
    "Version pins, {public model name: deployment name or exact upstream model}: requests for the "
    "model go to that deployment only, never to another version. Each model must be one the team "
    "(or key) may use, each value a deployment of that model's route; {} removes every pin."
)


class _In(Schema, StorableInput):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a silent no-op


class _Out(Schema):
    # Read from model objects through the aliases; built by field name where a handler adds to it.
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)


# --- tenants, teams, members -----------------------------------------------------------------


class TenantIn(_In):
    slug: str = Field(pattern=SLUG, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    residency_region: str = Field(default="", max_length=32)


class TenantPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    residency_region: str | None = Field(default=None, max_length=32)
    allowed_models: list[str] | None = Field(
        default=None,
        description="Route aliases or deployments the tenant may use; empty means all of them.",
    )


class TenantOut(Schema):
    slug: str
    name: str
    residency_region: str
    allowed_models: list[str]
    is_active: bool
    created_at: datetime


class TeamIn(_In):
    slug: str = Field(pattern=SLUG, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    allowed_models: list[str] = Field(
        default=[], description="Public model names the team may use; empty means every model."
    )
    model_pins: dict[str, str] = Field(default={}, description=PINS_HELP)


class TeamPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    allowed_models: list[str] | None = None
    model_pins: dict[str, str] | None = Field(default=None, description="Omit to keep them.")


class TeamOut(Schema):
    slug: str
    name: str
    allowed_models: list[str]
    model_pins: dict[str, str]
    created_at: datetime


class MemberIn(_In):
    username: str = Field(
        max_length=150,
        description="A new account's username; an existing account can only be added by a "
        "platform key, and its email and password are then left as they are.",
    )
    email: str = Field(default="", max_length=254)
    role: Role
    teams: list[str] = Field(default=[], description="Slugs of teams of this tenant to join.")
    password: str | None = Field(
        default=None,
        min_length=12,
        description="Optional: users who sign in through SSO need none.",
    )


class MemberPatch(_In):
    role: Role | None = None
    teams: list[str] | None = Field(
        default=None, description="Exactly the teams of this tenant the member is in."
    )
    email: str | None = Field(default=None, max_length=254)
    password: str | None = Field(
        default=None,
        min_length=12,
        description="Only for an account that belongs to this tenant alone (platform keys: "
        "any account but staff and superusers).",
    )


class MemberOut(_Out):
    """Read from a Membership whose user's teams are prefetched for this tenant only."""

    username: str = Field(alias="user.username")
    email: str = Field(alias="user.email")
    role: str
    teams: list[str]

    @staticmethod
    def resolve_teams(obj: Membership) -> list[str]:
        return [team.slug for team in obj.user.teams.all()]


# --- virtual keys ------------------------------------------------------------------------------


class KeyIn(_In):
    team: str = Field(max_length=64, description="Slug of the team the key belongs to.")
    name: str = Field(min_length=1, max_length=200)
    allowed_models: list[str] = Field(
        default=[], description="Within what the team allows; empty means all of those."
    )
    expires_at: datetime | None = None
    owner: str | None = Field(
        default=None, max_length=150, description="Username of a member of the tenant."
    )
    model_pins: dict[str, str] = Field(
        default={}, description=PINS_HELP + " A key's pin overrides its team's for that model."
    )


class KeyPatch(_In):
    allowed_models: list[str] | None = None
    model_pins: dict[str, str] | None = Field(default=None, description="Omit to keep them.")
    expires_at: datetime | None = Field(
        default=None, description="Send null to remove the expiry; omit to keep it."
    )


class KeyOut(_Out):
    id: int
    name: str
    team: str = Field(alias="team.slug")
    prefix: str = Field(
        description="The first characters of the key; the key itself is never shown again."
    )
    owner: str | None = Field(default=None, alias="owner.username")
    allowed_models: list[str]
    model_pins: dict[str, str] = Field(
        description="The key's own pins; its team's apply to the models not pinned here."
    )
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class KeyRotate(_In):
    grace_seconds: int = Field(
        default=3600,
        ge=0,
        le=30 * 24 * 3600,
        description="How long the old key keeps working; 0 revokes it at once.",
    )


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself. Shown once: store it now.")


# --- admin keys --------------------------------------------------------------------------------


class AdminKeyIn(_In):
    name: str = Field(min_length=1, max_length=200)
    tenant: str | None = Field(
        default=None,
        max_length=64,
        description="Slug of the tenant it may manage; null for the whole platform.",
    )


class AdminKeyOut(_Out):
    id: int
    name: str
    tenant: str | None = Field(
        default=None, alias="tenant.slug", description="null: the whole platform"
    )
    prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class AdminKeyCreated(AdminKeyOut):
    key: str = Field(description="The admin key itself. Shown once: store it now.")


# --- providers, deployments, routes (platform) -------------------------------------------------


class ProviderIn(_In):
    kind: Literal["openai", "anthropic"]
    base_url: str = Field(pattern=r"^https?://", max_length=500)
    credential: str | None = Field(
        default=None, description="Write-only: stored encrypted, never returned. Omit to keep it."
    )
    region: str = Field(default="", max_length=32)
    requests_per_minute: int | None = Field(
        default=None,
        gt=0,
        le=INT_MAX,
        description="The account's own limit: the gateway never sends more.",
    )
    tokens_per_minute: int | None = Field(default=None, gt=0, le=INT_MAX)
    capacity_queue_seconds: float = Field(
        default=0,
        ge=0,
        le=60,
        description="How long a request may wait for capacity before failing over.",
    )


class ProviderOut(Schema):
    name: str
    kind: str
    base_url: str
    region: str
    requests_per_minute: int | None
    tokens_per_minute: int | None
    capacity_queue_seconds: float
    is_active: bool
    has_credential: bool
    updated_at: datetime

    @staticmethod
    def resolve_has_credential(obj: object) -> bool:
        return bool(getattr(obj, "credential_encrypted", ""))


class DeploymentIn(_In):
    provider: str = Field(max_length=64)
    upstream_model: str = Field(min_length=1, max_length=200)
    # The columns' numeric(12, 6): a price is at most 999999.999999 USD per million tokens.
    input_price_per_mtok: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=6)
    output_price_per_mtok: Decimal = Field(
        default=Decimal(0), ge=0, max_digits=12, decimal_places=6
    )


class DeploymentOut(_Out):
    name: str
    provider: str = Field(alias="provider.name")
    upstream_model: str
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    is_active: bool


class TargetIn(_In):
    deployment: str = Field(max_length=128)
    weight: int = Field(
        default=1, ge=0, le=INT_MAX, description="With the weighted strategy; 0: fallback only."
    )


class RouteIn(_In):
    description: str = Field(default="", max_length=500)
    strategy: Literal["ordered", "weighted", "latency", "category"] = "ordered"
    sticky: bool = False
    timeout_seconds: float | None = Field(default=None, gt=0)
    first_token_timeout_seconds: float | None = Field(default=None, gt=0)
    hosted_tools: Literal["refuse", "drop"] = "refuse"
    cache_mode: Literal["off", "exact", "semantic"] = Field(
        default="off", description="Serve answers again: exact repeats, or same meaning too."
    )
    cache_ttl_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    cache_scope: Literal["tenant", "team", "user"] = "tenant"
    cache_similarity: float | None = Field(
        default=None, gt=0, le=1, description="Semantic: least similarity served (null: 0.90)."
    )
    targets: list[TargetIn] = Field(min_length=1)


class TargetOut(_Out):
    deployment: str = Field(alias="deployment.name")
    weight: int


class RouteOut(Schema):
    alias: str
    description: str
    strategy: str
    sticky: bool
    timeout_seconds: float | None
    first_token_timeout_seconds: float | None
    hosted_tools: str
    cache_mode: str
    cache_ttl_seconds: int
    cache_scope: str
    cache_similarity: float | None
    is_active: bool
    targets: list[TargetOut]

    @staticmethod
    def resolve_targets(obj: object) -> list[object]:
        return list(obj.targets.all())  # type: ignore[attr-defined]


# --- activity ----------------------------------------------------------------------------------


class ActivityOut(_Out):
    occurred_at: datetime
    tenant: str | None = Field(default=None, alias="tenant.slug")
    actor_kind: str = Field(description="user, admin_key, config or system")
    actor_label: str
    action: str = Field(description="Dotted, e.g. key.create")
    target_type: str
    target_id: str
    target_label: str
    details: dict[str, Any]


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
    pass


class BudgetIn(BudgetSpec, _RuleScope):
    pass


class _RuleOut(_Out):
    id: int
    scope: str
    team: str | None = Field(default=None, alias="team.slug")
    key_id: int | None = Field(default=None, alias="api_key_id")
    end_user: str
    shadow: bool
    updated_at: datetime


class LimitOut(_RuleOut):
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


class QuotaPolicyOut(_Out):
    on_store_failure_limits: str
    on_store_failure_budgets: str
    max_request_cost_usd: Decimal | None
    over_ceiling: str
    downgrade_route: str
    default_max_tokens: int

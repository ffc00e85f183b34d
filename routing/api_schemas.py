"""Bodies of the platform part of the management API (routing/api.py): providers, deployments,
routes. A provider's credential goes in, never out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from ninja import Field, Schema

from gateway_site.api.schemas import BodyIn, BodyOut
from gateway_site.bounds import INT_MAX

# --- providers, deployments, routes (platform) -------------------------------------------------


class ProviderIn(BodyIn):
    kind: Literal["openai", "anthropic", "openai-responses"]
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


class DeploymentIn(BodyIn):
    provider: str = Field(max_length=64)
    upstream_model: str = Field(min_length=1, max_length=200)
    # The columns' numeric(12, 6): a price is at most 999999.999999 USD per million tokens.
    input_price_per_mtok: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=6)
    output_price_per_mtok: Decimal = Field(
        default=Decimal(0), ge=0, max_digits=12, decimal_places=6
    )


class DeploymentOut(BodyOut):
    name: str
    provider: str = Field(alias="provider.name")
    upstream_model: str
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    is_active: bool


class TargetIn(BodyIn):
    deployment: str = Field(max_length=128)
    weight: int = Field(
        default=1, ge=0, le=INT_MAX, description="With the weighted strategy; 0: fallback only."
    )


class RouteIn(BodyIn):
    description: str = Field(default="", max_length=500)
    strategy: Literal["ordered", "weighted", "latency", "category"] = "ordered"
    sticky: bool = False
    # Finite: a stored Infinity reads back as a bare `Infinity`, which is not JSON.
    timeout_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    first_token_timeout_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    hosted_tools: Literal["refuse", "drop"] = "refuse"
    forward_hosted_tools: list[str] = Field(
        default=[],
        max_length=32,
        description="Hosted tool types (web_search, file_search, ...) sent on to a deployment "
        "that speaks the Responses API natively; others get `hosted_tools`.",
    )
    cache_mode: Literal["off", "exact", "semantic"] = Field(
        default="off", description="Serve answers again: exact repeats, or same meaning too."
    )
    cache_ttl_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    cache_scope: Literal["tenant", "team", "user"] = "tenant"
    cache_similarity: float | None = Field(
        default=None, gt=0, le=1, description="Semantic: least similarity served (null: 0.90)."
    )
    targets: list[TargetIn] = Field(min_length=1)


class TargetOut(BodyOut):
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
    forward_hosted_tools: list[str]
    cache_mode: str
    cache_ttl_seconds: int
    cache_scope: str
    cache_similarity: float | None
    is_active: bool
    targets: list[TargetOut]

    @staticmethod
    def resolve_targets(obj: object) -> list[object]:
        return list(obj.targets.all())  # type: ignore[attr-defined]

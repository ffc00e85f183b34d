"""Reads for tenants, members, keys and their usage. Every read is scoped to one tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Max, QuerySet, Sum

from audit.models import AuditRecord
from routing.models import Deployment, Route
from tenants.models import ApiKey, Membership, Role, Team, Tenant

AnyUser = AbstractBaseUser | AnonymousUser


@dataclass(frozen=True, slots=True)
class KeyPin:
    model: str
    version: str  # a deployment name or an exact upstream model
    source: str  # "key", or "team" when the key has no pin of its own for the model


@dataclass(frozen=True, slots=True)
class KeyUsage:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    last_used_at: datetime | None = None


def memberships_of(*, user: AnyUser) -> list[Membership]:
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.filter(user_id=user.pk, tenant__is_active=True)
        .select_related("tenant")
        .order_by("tenant__name")
    )


def is_platform_admin(*, user: AnyUser) -> bool:
    """Superusers, and anyone holding the platform admin role in some tenant, see every tenant."""
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return Membership.objects.filter(user_id=user.pk, role=Role.PLATFORM_ADMIN).exists()


def tenant_by_slug(*, slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug, is_active=True).first()


def tenants_all() -> QuerySet[Tenant]:
    return Tenant.objects.filter(is_active=True).order_by("name")


def membership_of(*, user: AnyUser, tenant: Tenant) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user_id=user.pk, tenant=tenant).first()


def teams_of_tenant(*, tenant: Tenant) -> QuerySet[Team]:
    return Team.objects.filter(tenant=tenant).prefetch_related("members").order_by("name")


def teams_of_member(*, tenant: Tenant, user: AnyUser) -> QuerySet[Team]:
    return Team.objects.filter(tenant=tenant, members__id=user.pk or 0).order_by("name")


def team_of_tenant(*, tenant: Tenant, team_id: int) -> Team | None:
    return Team.objects.filter(tenant=tenant, pk=team_id).first()


def members_of_tenant(*, tenant: Tenant) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")
    )


def member_of_tenant(*, tenant: Tenant, membership_id: int) -> Membership | None:
    return Membership.objects.filter(tenant=tenant, pk=membership_id).select_related("user").first()


def keys_of_tenant(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.filter(tenant=tenant)
        .select_related("team", "owner", "replaced_by")
        .order_by("revoked_at", "-created_at")
    )


def keys_of_owner(*, tenant: Tenant, user: AnyUser) -> QuerySet[ApiKey]:
    return keys_of_tenant(tenant=tenant).filter(owner_id=user.pk)


def key_of_tenant(*, tenant: Tenant, key_id: int, owner: AnyUser | None = None) -> ApiKey | None:
    keys = (
        keys_of_tenant(tenant=tenant) if owner is None else keys_of_owner(tenant=tenant, user=owner)
    )
    return keys.filter(pk=key_id).first()


def key_usage(*, tenant: Tenant, key_ids: list[int]) -> dict[int, KeyUsage]:
    rows = (
        AuditRecord.objects.filter(tenant=tenant, api_key_id__in=key_ids)
        .values("api_key_id")
        .annotate(
            requests=Count("id"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cost_usd=Sum("cost_usd"),
            last_used_at=Max("started_at"),
        )
    )
    return {
        row["api_key_id"]: KeyUsage(
            requests=row["requests"],
            prompt_tokens=row["prompt_tokens"] or 0,
            completion_tokens=row["completion_tokens"] or 0,
            cost_usd=row["cost_usd"] or Decimal(0),
            last_used_at=row["last_used_at"],
        )
        for row in rows
    }


def key_recent_requests(*, tenant: Tenant, key: ApiKey, limit: int = 20) -> QuerySet[AuditRecord]:
    return AuditRecord.objects.filter(tenant=tenant, api_key_id=key.pk).order_by("-started_at")[
        :limit
    ]


def models_of_gateway() -> list[str]:
    """Every public model name: route aliases, then deployments asked for by their own name."""
    aliases = Route.objects.filter(is_active=True).order_by("alias").values_list("alias", flat=True)
    names = (
        Deployment.objects.filter(is_active=True).order_by("name").values_list("name", flat=True)
    )
    return [*aliases, *names]


def models_available(*, tenant: Tenant, team: Team | None = None) -> list[str]:
    """The model names a key of this tenant (and team) may be allowed, as the proxy computes it."""
    return models_usable(tenant=tenant, team_models=team.allowed_models if team else [])


def models_usable(
    *, tenant: Tenant, team_models: list[str], key_models: list[str] | None = None
) -> list[str]:
    """What a key with these allowed lists may use: each non-empty list narrows (tenants/auth.py)."""
    models = models_of_gateway()
    for allowed in (tenant.allowed_models, team_models, key_models or []):
        if allowed:
            models = [name for name in models if name in allowed]
    return models


def deployments_serving(*, model: str) -> list[Deployment]:
    """The deployments a request for `model` may reach, as the routing table loads them: a live
    route's targets in order, else the deployment of that name. These are what a pin may name."""
    live = Deployment.objects.filter(is_active=True, provider__is_active=True)
    route = Route.objects.filter(alias=model, is_active=True).first()
    if route is not None:
        targets = route.targets.filter(deployment__in=live).select_related("deployment")
        if targets:
            return [target.deployment for target in targets]
    return list(live.filter(name=model))


def model_versions(*, models: list[str]) -> dict[str, list[Deployment]]:
    """The models among these that more than one deployment serves, with those deployments."""
    return {model: found for model in models if len(found := deployments_serving(model=model)) > 1}


def pins_of_key(*, key: ApiKey) -> list[KeyPin]:
    """The pins the proxy applies to this key: its own, then its team's for the other models."""
    pins = {model: KeyPin(model, version, "team") for model, version in key.team.model_pins.items()}
    pins.update({model: KeyPin(model, version, "key") for model, version in key.model_pins.items()})
    return sorted(pins.values(), key=lambda pin: pin.model)

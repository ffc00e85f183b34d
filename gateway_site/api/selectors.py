"""Reads for the management API, always narrowed to what the calling key may see."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from gateway_site.api.auth import AdminScope
from gateway_site.api.models import AdminKey
from routing.models import Deployment, Provider, Route, RouteTarget
from tenants.models import ApiKey, Membership, Team, Tenant


def tenants_visible(*, scope: AdminScope) -> QuerySet[Tenant]:
    tenants = Tenant.objects.order_by("slug")
    return tenants if scope.tenant_id is None else tenants.filter(pk=scope.tenant_id)


def tenant_find(*, scope: AdminScope, slug: str) -> Tenant | None:
    return tenants_visible(scope=scope).filter(slug=slug).first()


def teams_of(*, tenant: Tenant) -> QuerySet[Team]:
    return Team.objects.filter(tenant=tenant).order_by("slug")


def memberships_of(*, tenant: Tenant) -> QuerySet[Membership]:
    teams = Prefetch("user__teams", queryset=Team.objects.filter(tenant=tenant).order_by("slug"))
    return (
        Membership.objects.filter(tenant=tenant)
        .select_related("user")
        .prefetch_related(teams)
        .order_by("user__username")
    )


def keys_of(
    *, tenant: Tenant, team_slug: str | None = None, include_revoked: bool = True
) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.filter(tenant=tenant).select_related("team", "owner").order_by("id")
    if team_slug:
        keys = keys.filter(team__slug=team_slug)
    if not include_revoked:
        keys = keys.filter(revoked_at__isnull=True)
    return keys


def admin_keys_visible(*, scope: AdminScope) -> QuerySet[AdminKey]:
    keys = AdminKey.objects.select_related("tenant").order_by("id")
    return keys if scope.tenant_id is None else keys.filter(tenant_id=scope.tenant_id)


def providers_all() -> QuerySet[Provider]:
    return Provider.objects.order_by("name")


def deployments_all() -> QuerySet[Deployment]:
    return Deployment.objects.select_related("provider").order_by("name")


def routes_all() -> QuerySet[Route]:
    targets = Prefetch("targets", queryset=RouteTarget.objects.select_related("deployment"))
    return Route.objects.prefetch_related(targets).order_by("alias")

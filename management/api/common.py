"""What every management handler needs: the caller's scope, and lookups that answer 404 alike
for "absent" and "not yours"."""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest

from management import selectors
from management.auth import AdminScope
from management.errors import not_found, platform_only
from tenants.models import ApiKey, Team, Tenant


def scope_of(request: HttpRequest) -> AdminScope:
    return cast(AdminScope, request.auth)  # type: ignore[attr-defined]


def platform_scope(request: HttpRequest) -> AdminScope:
    scope = scope_of(request)
    if not scope.is_platform:
        raise platform_only()
    return scope


def tenant_or_404(request: HttpRequest, slug: str) -> Tenant:
    tenant = selectors.tenant_find(scope=scope_of(request), slug=slug)
    if tenant is None:
        raise not_found(f"Tenant '{slug}'")
    return tenant


def team_or_404(tenant: Tenant, slug: str) -> Team:
    team = selectors.teams_of(tenant=tenant).filter(slug=slug).first()
    if team is None:
        raise not_found(f"Team '{slug}' of tenant '{tenant.slug}'")
    return team


def key_or_404(tenant: Tenant, key_id: int) -> ApiKey:
    key = selectors.keys_of(tenant=tenant).filter(pk=key_id).first()
    if key is None:
        raise not_found(f"Key {key_id} of tenant '{tenant.slug}'")
    return key

"""What every management handler needs: the caller's scope, and lookups that answer 404 alike
for "absent" and "not yours"."""

from __future__ import annotations

from typing import TypeVar, cast

from django.db.models import Model, QuerySet
from django.http import HttpRequest

from gateway_site.api import selectors
from gateway_site.api.auth import AdminScope
from gateway_site.api.errors import ApiError, invalid, not_found, platform_only
from tenants.models import ApiKey, Team, Tenant

M = TypeVar("M", bound=Model)


def one_or_404(queryset: QuerySet[M], what: str) -> M:
    found = queryset.first()
    if found is None:
        raise not_found(what)
    return found


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
    teams = selectors.teams_of(tenant=tenant).filter(slug=slug)
    return one_or_404(teams, f"Team '{slug}' of tenant '{tenant.slug}'")


def key_or_404(tenant: Tenant, key_id: int) -> ApiKey:
    keys = selectors.keys_of(tenant=tenant).filter(pk=key_id)
    return one_or_404(keys, f"Key {key_id} of tenant '{tenant.slug}'")


def put_precondition(request: HttpRequest, existing: QuerySet[M], what: str) -> None:
    """PUT creates or replaces. `If-None-Match: *` makes it create only and `If-Match: *` update
    only (RFC 9110, 13.1): otherwise a 412 and nothing changes."""
    if request.headers.get("If-None-Match") == "*" and existing.exists():
        raise ApiError(
            412, "precondition_failed", f"{what} already exists (If-None-Match: *): unchanged."
        )
    if request.headers.get("If-Match") == "*" and not existing.exists():
        raise ApiError(
            412, "precondition_failed", f"{what} does not exist (If-Match: *): nothing created."
        )


_TARGET_OF_SCOPE = {"team": "team", "key": "key_id", "user": "end_user", "agent": "agent"}


def unused_target_refuse(scope: str, body: object) -> None:
    """A team, key, end user or agent the scope does not use would be ignored, and the rule set
    on another scope instead (a `tenant` rule naming a team replaces the tenant's own)."""
    for field in ("team", "key_id", "end_user", "agent"):
        if _TARGET_OF_SCOPE.get(scope) != field and getattr(body, field, None) not in (None, ""):
            raise invalid(field, f"not used by scope '{scope}': leave it out, or change the scope")

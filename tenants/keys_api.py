"""Virtual keys of a tenant, and the admin keys of the management API itself.

A key's plaintext is in the create response and nowhere else: lists show prefixes only.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from gateway_site.api import selectors
from gateway_site.api import services as admin_key_services
from gateway_site.api.common import (
    key_or_404,
    one_or_404,
    scope_of,
    tenant_or_404,
)
from gateway_site.api.errors import conflict, invalid, platform_only
from gateway_site.api.models import AdminKey
from gateway_site.api.schemas import (
    AdminKeyCreated,
    AdminKeyIn,
    AdminKeyOut,
    KeyCreated,
    KeyIn,
    KeyOut,
    KeyPatch,
    KeyRotate,
)
from routing.selectors import check_pins
from tenants import services
from tenants.models import ApiKey, Team, Tenant

router = Router(tags=["keys"])


def _check_models(team: Team, models: list[str]) -> None:
    outside = sorted(set(models) - set(team.allowed_models)) if team.allowed_models else []
    if outside:
        raise invalid(
            "allowed_models",
            f"team '{team.slug}' may not use {', '.join(outside)}; "
            f"it allows {', '.join(team.allowed_models)}",
        )


def _owner(tenant: Tenant, username: str | None) -> User | None:
    if username is None:
        return None
    membership = selectors.memberships_of(tenant=tenant).filter(user__username=username).first()
    if membership is None:
        raise invalid("owner", f"'{username}' is not a member of tenant '{tenant.slug}'")
    return membership.user


@router.get("/tenants/{slug}/keys", response=list[KeyOut], summary="List a tenant's virtual keys")
@paginate
def key_list(
    request: HttpRequest, slug: str, team: str | None = None, include_revoked: bool = True
) -> QuerySet[ApiKey]:
    return selectors.keys_of(
        tenant=tenant_or_404(request, slug), team_slug=team, include_revoked=include_revoked
    )


@router.post(
    "/tenants/{slug}/keys",
    response={201: KeyCreated},
    summary="Create a virtual key (its value is shown in this response only)",
)
def key_create(request: HttpRequest, slug: str, payload: KeyIn) -> Status[KeyCreated]:
    tenant = tenant_or_404(request, slug)
    team = selectors.teams_of(tenant=tenant).filter(slug=payload.team).first()
    if team is None:
        raise invalid("team", f"tenant '{slug}' has no team '{payload.team}'")
    _check_models(team, payload.allowed_models)
    check_pins(
        tenant,
        payload.model_pins,
        team_models=team.allowed_models,
        key_models=payload.allowed_models,
    )
    owner = _owner(tenant, payload.owner)
    if selectors.keys_of(tenant=tenant, include_revoked=False).filter(name=payload.name).exists():
        raise conflict(f"Tenant '{slug}' already has a live key named '{payload.name}'.")
    actor = scope_of(request).actor
    with transaction.atomic():
        key, material = services.key_create(
            team=team,
            name=payload.name,
            allowed_models=payload.allowed_models,
            expires_at=payload.expires_at,
            owner=owner,
            actor=actor,
        )
        if payload.model_pins:
            services.key_pins_set(key=key, model_pins=payload.model_pins, actor=actor)
    out = KeyOut.from_orm(key).model_dump()
    return Status(201, KeyCreated(**out, key=material.plaintext))


@router.get("/tenants/{slug}/keys/{key_id}", response=KeyOut, summary="Get a virtual key")
def key_get(request: HttpRequest, slug: str, key_id: int) -> ApiKey:
    return key_or_404(tenant_or_404(request, slug), key_id)


@router.patch(
    "/tenants/{slug}/keys/{key_id}",
    response=KeyOut,
    summary="Change a key's allowed models, version pins or expiry",
)
def key_update(request: HttpRequest, slug: str, key_id: int, payload: KeyPatch) -> ApiKey:
    tenant = tenant_or_404(request, slug)
    key = key_or_404(tenant, key_id)
    if key.revoked_at is not None:
        raise conflict(f"Key {key.prefix}… is revoked; create a new one instead.")
    allowed_models = (
        payload.allowed_models if payload.allowed_models is not None else key.allowed_models
    )
    _check_models(key.team, allowed_models)
    if payload.model_pins is not None:
        check_pins(
            tenant,
            payload.model_pins,
            team_models=key.team.allowed_models,
            key_models=allowed_models,
        )
    expires_at = payload.expires_at if "expires_at" in payload.model_fields_set else key.expires_at
    actor = scope_of(request).actor
    with transaction.atomic():
        if payload.model_fields_set != {"model_pins"}:  # a pins-only change is logged as one
            services.key_update(
                key=key,
                allowed_models=allowed_models,
                expires_at=expires_at,
                plaintext=None,
                actor=actor,
            )
        if payload.model_pins is not None:
            services.key_pins_set(key=key, model_pins=payload.model_pins, actor=actor)
    return key


@router.post(
    "/tenants/{slug}/keys/{key_id}/revoke",
    response=KeyOut,
    summary="Revoke a virtual key (the proxy refuses it within a second)",
)
def key_revoke(request: HttpRequest, slug: str, key_id: int) -> ApiKey:
    key = key_or_404(tenant_or_404(request, slug), key_id)
    return services.key_revoke(key=key, actor=scope_of(request).actor)


@router.post(
    "/tenants/{slug}/keys/{key_id}/rotate",
    response={201: KeyCreated},
    summary="Rotate a key: a successor (shown once) takes its name; the old one works for the grace",
)
def key_rotate(
    request: HttpRequest, slug: str, key_id: int, payload: KeyRotate
) -> Status[KeyCreated]:
    key = key_or_404(tenant_or_404(request, slug), key_id)
    if key.revoked_at is not None:
        raise conflict(f"Key {key.prefix}… is revoked; create a new one instead.")
    if key.replaced_by_id is not None:
        # Rotating it again would mint a second live successor and forget the first.
        raise conflict(f"Key {key.prefix}… is already rotated; rotate its successor instead.")
    successor, material = services.key_rotate(
        key=key, grace=timedelta(seconds=payload.grace_seconds), actor=scope_of(request).actor
    )
    out = KeyOut.from_orm(successor).model_dump()
    return Status(201, KeyCreated(**out, key=material.plaintext))


# --- admin keys --------------------------------------------------------------------------------


@router.get(
    "/admin-keys", response=list[AdminKeyOut], summary="List admin keys in this key's scope"
)
@paginate
def admin_key_list(request: HttpRequest) -> QuerySet[AdminKey]:
    return selectors.admin_keys_visible(scope=scope_of(request))


@router.post(
    "/admin-keys",
    response={201: AdminKeyCreated},
    summary="Create an admin key (its value is shown in this response only)",
)
def admin_key_create(request: HttpRequest, payload: AdminKeyIn) -> Status[AdminKeyCreated]:
    scope = scope_of(request)
    if payload.tenant is None and not scope.is_platform:
        raise platform_only()
    tenant = tenant_or_404(request, payload.tenant) if payload.tenant is not None else None
    if tenant is None and payload.role != "tenant_admin":
        raise invalid("role", "A platform key takes no role: it passes everywhere.")
    key, material = admin_key_services.admin_key_create(
        name=payload.name,
        tenant=tenant,
        created_by=scope.label,
        actor=scope.actor,
        role=payload.role,
    )
    out = AdminKeyOut.from_orm(key).model_dump()
    return Status(201, AdminKeyCreated(**out, key=material.plaintext))


@router.post(
    "/admin-keys/{key_id}/revoke", response=AdminKeyOut, summary="Revoke an admin key (at once)"
)
def admin_key_revoke(request: HttpRequest, key_id: int) -> AdminKey:
    scope = scope_of(request)
    key = one_or_404(
        selectors.admin_keys_visible(scope=scope).filter(pk=key_id), f"Admin key {key_id}"
    )
    return admin_key_services.admin_key_revoke(key=key, actor=scope.actor)

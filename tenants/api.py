"""Tenants, teams and members. A tenant key sees only its own tenant; creating tenants and
changing residency or activation takes a platform key."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from gateway_site.api import selectors
from gateway_site.api.common import (
    one_or_404,
    platform_scope,
    scope_of,
    team_or_404,
    tenant_or_404,
)
from gateway_site.api.errors import ApiError, invalid
from gateway_site.api.schemas import (
    MemberIn,
    MemberOut,
    MemberPatch,
    TeamIn,
    TeamOut,
    TeamPatch,
    TenantIn,
    TenantOut,
    TenantPatch,
)
from routing.selectors import check_pins
from tenants import services
from tenants.models import Membership, Role, Team, Tenant
from tenants.selectors import user_named

router = Router(tags=["tenants"])


@router.get("/tenants", response=list[TenantOut], summary="List the tenants this key may see")
@paginate
def tenant_list(request: HttpRequest) -> QuerySet[Tenant]:
    return selectors.tenants_visible(scope=scope_of(request))


@router.post("/tenants", response={201: TenantOut}, summary="Create a tenant (platform)")
def tenant_create(request: HttpRequest, payload: TenantIn) -> Status[Tenant]:
    scope = platform_scope(request)
    tenant = services.tenant_create(
        slug=payload.slug,
        name=payload.name,
        residency_region=payload.residency_region,
        actor=scope.actor,
    )
    return Status(201, tenant)


@router.get("/tenants/{slug}", response=TenantOut, summary="Get a tenant")
def tenant_get(request: HttpRequest, slug: str) -> Tenant:
    return tenant_or_404(request, slug)


@router.patch(
    "/tenants/{slug}",
    response=TenantOut,
    summary="Rename a tenant, set the models it may use, or change its residency (platform)",
)
def tenant_update(request: HttpRequest, slug: str, payload: TenantPatch) -> Tenant:
    tenant = tenant_or_404(request, slug)
    scope = scope_of(request)
    if payload.residency_region is not None and not scope.is_platform:
        # Residency is a compliance control: the tenant's own key may not loosen it.
        raise ApiError(
            403, "platform_scope_required", "Changing residency needs a platform admin key."
        )
    if payload.name is not None or payload.residency_region is not None:
        tenant = services.tenant_update(
            tenant=tenant,
            name=payload.name,
            residency_region=payload.residency_region,
            actor=scope.actor,
        )
    if payload.allowed_models is not None:
        tenant = services.tenant_models_set(
            tenant=tenant, allowed_models=payload.allowed_models, actor=scope.actor
        )
    return tenant


def _set_active(request: HttpRequest, slug: str, *, is_active: bool) -> Tenant:
    scope = platform_scope(request)
    tenant = tenant_or_404(request, slug)
    return services.tenant_set_active(tenant=tenant, is_active=is_active, actor=scope.actor)


@router.post(
    "/tenants/{slug}/deactivate",
    response=TenantOut,
    summary="Deactivate a tenant (platform): every key of it stops working",
)
def tenant_deactivate(request: HttpRequest, slug: str) -> Tenant:
    return _set_active(request, slug, is_active=False)


@router.post(
    "/tenants/{slug}/activate", response=TenantOut, summary="Reactivate a tenant (platform)"
)
def tenant_activate(request: HttpRequest, slug: str) -> Tenant:
    return _set_active(request, slug, is_active=True)


# --- teams -------------------------------------------------------------------------------------


@router.get("/tenants/{slug}/teams", response=list[TeamOut], summary="List a tenant's teams")
@paginate
def team_list(request: HttpRequest, slug: str) -> QuerySet[Team]:
    return selectors.teams_of(tenant=tenant_or_404(request, slug))


@router.post("/tenants/{slug}/teams", response={201: TeamOut}, summary="Create a team")
def team_create(request: HttpRequest, slug: str, payload: TeamIn) -> Status[Team]:
    tenant = tenant_or_404(request, slug)
    check_pins(tenant, payload.model_pins, team_models=payload.allowed_models)
    actor = scope_of(request).actor
    with transaction.atomic():
        team = services.team_create(
            tenant=tenant,
            slug=payload.slug,
            name=payload.name,
            allowed_models=payload.allowed_models,
            actor=actor,
        )
        if payload.model_pins:
            services.team_pins_set(team=team, model_pins=payload.model_pins, actor=actor)
    return Status(201, team)


@router.get("/tenants/{slug}/teams/{team}", response=TeamOut, summary="Get a team")
def team_get(request: HttpRequest, slug: str, team: str) -> Team:
    return team_or_404(tenant_or_404(request, slug), team)


@router.patch("/tenants/{slug}/teams/{team}", response=TeamOut, summary="Update a team")
def team_update(request: HttpRequest, slug: str, team: str, payload: TeamPatch) -> Team:
    found = team_or_404(tenant_or_404(request, slug), team)
    allowed_models = (
        payload.allowed_models if payload.allowed_models is not None else found.allowed_models
    )
    if payload.model_pins is not None:
        check_pins(found.tenant, payload.model_pins, team_models=allowed_models)
    actor = scope_of(request).actor
    with transaction.atomic():
        if payload.model_fields_set != {"model_pins"}:  # a pins-only change is logged as one
            found = services.team_update(
                team=found, name=payload.name, allowed_models=payload.allowed_models, actor=actor
            )
        if payload.model_pins is not None:
            found = services.team_pins_set(team=found, model_pins=payload.model_pins, actor=actor)
    return found


# --- members -----------------------------------------------------------------------------------


@router.get("/tenants/{slug}/members", response=list[MemberOut], summary="List members and roles")
@paginate
def member_list(request: HttpRequest, slug: str) -> QuerySet[Membership]:
    return selectors.memberships_of(tenant=tenant_or_404(request, slug))


def _teams_named(tenant: Tenant, slugs: list[str]) -> list[Team]:
    teams = []
    for team_slug in slugs:
        team = selectors.teams_of(tenant=tenant).filter(slug=team_slug).first()
        if team is None:
            raise invalid("teams", f"tenant '{tenant.slug}' has no team '{team_slug}'")
        teams.append(team)
    return teams


def _member(tenant: Tenant, username: str) -> Membership:
    members = selectors.memberships_of(tenant=tenant).filter(user__username=username)
    return one_or_404(members, f"Member '{username}' of tenant '{tenant.slug}'")


@router.post(
    "/tenants/{slug}/members",
    response={201: MemberOut},
    summary="Create an account as a member (platform keys: or add an existing account)",
)
def member_create(request: HttpRequest, slug: str, payload: MemberIn) -> Status[Membership]:
    tenant = tenant_or_404(request, slug)
    scope = scope_of(request)
    teams = _teams_named(tenant, payload.teams)
    services.username_check(payload.username)
    existing = user_named(username=payload.username)
    if existing is not None and scope.is_platform and not (payload.email or payload.password):
        services.member_add(
            tenant=tenant,
            user=existing,
            role=payload.role,
            teams=teams,
            platform=True,
            actor=scope.actor,
        )
    else:
        services.member_create(
            tenant=tenant,
            username=payload.username,
            email=payload.email,
            role=payload.role,
            teams=teams,
            password=payload.password,
            platform=scope.is_platform,
            actor=scope.actor,
        )
    return Status(201, _member(tenant, payload.username))


@router.patch(
    "/tenants/{slug}/members/{username}",
    response=MemberOut,
    summary="Change a member's role, teams (exactly those listed), email or password",
)
def member_update(
    request: HttpRequest, slug: str, username: str, payload: MemberPatch
) -> Membership:
    tenant = tenant_or_404(request, slug)
    scope = scope_of(request)
    membership = _member(tenant, username)
    services.member_update(
        membership=membership,
        role=payload.role,
        teams=None if payload.teams is None else _teams_named(tenant, payload.teams),
        email=payload.email,
        password=payload.password,
        platform=scope.is_platform,
        actor=scope.actor,
    )
    return _member(tenant, username)


@router.get("/tenants/{slug}/members/{username}", response=MemberOut, summary="Get a member")
def member_get(request: HttpRequest, slug: str, username: str) -> Membership:
    return _member(tenant_or_404(request, slug), username)


@router.delete(
    "/tenants/{slug}/members/{username}",
    response={204: None},
    summary="Remove a member from the tenant and its teams",
)
def member_delete(request: HttpRequest, slug: str, username: str) -> Status[None]:
    tenant = tenant_or_404(request, slug)
    membership = _member(tenant, username)
    scope = scope_of(request)
    if membership.role == Role.PLATFORM_ADMIN and not scope.is_platform:
        raise ApiError(
            403,
            "user_outside_scope",
            f"'{username}' is a platform admin: a platform key removes them.",
        )
    services.member_remove(tenant=tenant, user=membership.user, actor=scope.actor)
    return Status(204, None)

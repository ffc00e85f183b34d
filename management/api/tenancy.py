"""Tenants, teams and members. A tenant key sees only its own tenant; creating tenants and
changing residency or activation takes a platform key."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from management import selectors
from management.api.common import (
    check_pins,
    one_or_404,
    platform_scope,
    scope_of,
    team_or_404,
    tenant_or_404,
)
from management.errors import ApiError, conflict, invalid
from management.schemas import (
    MemberIn,
    MemberOut,
    TeamIn,
    TeamOut,
    TeamPatch,
    TenantIn,
    TenantOut,
    TenantPatch,
)
from tenants import services
from tenants.models import Membership, Role, Team, Tenant

router = Router(tags=["tenants"])


@router.get("/tenants", response=list[TenantOut], summary="List the tenants this key may see")
@paginate
def tenant_list(request: HttpRequest) -> QuerySet[Tenant]:
    return selectors.tenants_visible(scope=scope_of(request))


@router.post("/tenants", response={201: TenantOut}, summary="Create a tenant (platform)")
def tenant_create(request: HttpRequest, payload: TenantIn) -> Status[Tenant]:
    scope = platform_scope(request)
    if Tenant.objects.filter(slug=payload.slug).exists():
        raise conflict(f"A tenant with slug '{payload.slug}' already exists.")
    tenant = services.tenant_upsert(
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
        tenant = services.tenant_upsert(
            slug=tenant.slug,
            name=payload.name if payload.name is not None else tenant.name,
            residency_region=(
                payload.residency_region
                if payload.residency_region is not None
                else tenant.residency_region
            ),
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
    if selectors.teams_of(tenant=tenant).filter(slug=payload.slug).exists():
        raise conflict(f"Tenant '{slug}' already has a team '{payload.slug}'.")
    check_pins(tenant, payload.model_pins, team_models=payload.allowed_models)
    actor = scope_of(request).actor
    with transaction.atomic():
        team = services.team_upsert(
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
            found = services.team_upsert(
                tenant=found.tenant,
                slug=found.slug,
                name=payload.name if payload.name is not None else found.name,
                allowed_models=allowed_models,
                actor=actor,
            )
        if payload.model_pins is not None:
            found = services.team_pins_set(team=found, model_pins=payload.model_pins, actor=actor)
    return found


# --- members -----------------------------------------------------------------------------------


@router.get("/tenants/{slug}/members", response=list[MemberOut], summary="List members and roles")
@paginate
def member_list(request: HttpRequest, slug: str) -> QuerySet[Membership]:
    return selectors.memberships_of(tenant=tenant_or_404(request, slug))


def _tenant_may_manage(tenant: Tenant, username: str) -> bool:
    """A tenant key may create a user, or change one that belongs to its tenant alone. A user of
    another tenant, a staff account or a platform admin is not its to touch (their email,
    password, role or access)."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        return True
    if user.is_staff or user.is_superuser:
        return False
    roles = dict(Membership.objects.filter(user=user).values_list("tenant_id", "role"))
    return set(roles) == {tenant.pk} and roles[tenant.pk] != Role.PLATFORM_ADMIN


def _outside_scope(username: str) -> ApiError:
    return ApiError(
        403,
        "user_outside_scope",
        f"The username '{username}' belongs to an account this key does not manage: "
        "choose another, or ask a platform admin.",
    )


def _checked_username(username: str) -> str:
    """The path names the user to create: the column's length and Django's username rules."""
    try:
        get_user_model()._meta.get_field("username").run_validators(username)
    except ValidationError as exc:
        raise invalid("username", " ".join(exc.messages)) from None
    return username


@router.put(
    "/tenants/{slug}/members/{username}",
    response=MemberOut,
    summary="Add a member or change their role and teams",
)
def member_put(request: HttpRequest, slug: str, username: str, payload: MemberIn) -> Membership:
    tenant = tenant_or_404(request, slug)
    username = _checked_username(username)
    scope = scope_of(request)
    if payload.role == Role.PLATFORM_ADMIN and not scope.is_platform:
        raise ApiError(
            403, "platform_scope_required", "Granting platform_admin needs a platform admin key."
        )
    teams = []
    for team_slug in payload.teams:
        team = selectors.teams_of(tenant=tenant).filter(slug=team_slug).first()
        if team is None:
            raise invalid("teams", f"tenant '{slug}' has no team '{team_slug}'")
        teams.append(team)
    if not scope.is_platform and not _tenant_may_manage(tenant, username):
        raise _outside_scope(username)
    membership = Membership.objects.filter(tenant=tenant, user__username=username).first()
    if membership is None or payload.email or payload.password:
        services.member_upsert(
            tenant=tenant,
            username=username,
            email=payload.email,
            role=payload.role,
            teams=teams,
            password=payload.password,
            actor=scope.actor,
        )
    if membership is not None:
        # PUT means exactly these teams: an existing member leaves the teams not listed.
        services.membership_update(
            membership=membership, role=payload.role, teams=teams, actor=scope.actor
        )
    return selectors.memberships_of(tenant=tenant).get(user__username=username)


@router.get("/tenants/{slug}/members/{username}", response=MemberOut, summary="Get a member")
def member_get(request: HttpRequest, slug: str, username: str) -> Membership:
    tenant = tenant_or_404(request, slug)
    members = selectors.memberships_of(tenant=tenant).filter(user__username=username)
    membership = one_or_404(members, f"Member '{username}' of tenant '{slug}'")
    return membership


@router.delete(
    "/tenants/{slug}/members/{username}",
    response={204: None},
    summary="Remove a member from the tenant and its teams",
)
def member_delete(request: HttpRequest, slug: str, username: str) -> Status[None]:
    tenant = tenant_or_404(request, slug)
    members = selectors.memberships_of(tenant=tenant).filter(user__username=username)
    membership = one_or_404(members, f"Member '{username}' of tenant '{slug}'")
    scope = scope_of(request)
    if membership.role == Role.PLATFORM_ADMIN and not scope.is_platform:
        raise _outside_scope(username)
    services.member_remove(tenant=tenant, user=membership.user, actor=scope.actor)
    return Status(204, None)

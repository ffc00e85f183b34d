"""Tenant administration: teams, members and roles, every key, the models allowed, the activity log."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit import selectors as audit_selectors
from audit.activity.models import ActivityEvent
from audit.activity.selectors import activity_search
from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from gateway_site.console.filters import refused_response
from gateway_site.csv_safe import CsvWriter
from routing import selectors as routing_selectors
from tenants import selectors, services
from tenants.forms import (
    ActivityFilterForm,
    MemberAddForm,
    MemberForm,
    TeamEditForm,
    TeamForm,
    TenantModelsForm,
)
from tenants.models import Membership, Role, Team

ADMIN = Role.TENANT_ADMIN


def _team_form(request: HttpRequest, data: object = None, **kwargs: object) -> TeamForm:
    tenant = console_context(request).tenant
    return TeamForm(data, models=routing_selectors.models_available(tenant=tenant), **kwargs)


@console_view(ADMIN)
def teams(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = _team_form(request, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(
                tenant=ctx.tenant, actor=Actor.user(request.user), **form.cleaned_data
            )
        except services.TenancyError as exc:
            form.add_error(exc.field or None, exc.message)
        else:
            messages.success(request, f"Team {team.name} created.")
            return redirect("console:admin_teams", tenant_slug=ctx.tenant.slug)
    status = 400 if request.method == "POST" else 200
    teams = selectors.teams_of_tenant(tenant=ctx.tenant)
    return render(
        request, "console/admin/teams.html", {"teams": teams, "form": form}, status=status
    )


def _team(request: HttpRequest, team_id: int) -> Team:
    team = selectors.team_of_tenant(tenant=console_context(request).tenant, team_id=team_id)
    if team is None:
        raise Http404("no such team")
    return team


@console_view(ADMIN)
def team_edit(request: HttpRequest, team_id: int) -> HttpResponse:
    team = _team(request, team_id)
    models = routing_selectors.models_available(tenant=team.tenant)
    form = TeamEditForm(
        request.POST or None,
        models=models,
        tenant=team.tenant,
        initial={
            "slug": team.slug,
            "name": team.name,
            "allowed_models": team.allowed_models,
            "model_pins": team.model_pins,
        },
    )
    form.fields["slug"].disabled = True
    if request.method == "POST" and form.is_valid():
        data, actor = form.cleaned_data, Actor.user(request.user)
        with transaction.atomic():
            services.team_update(
                team=team, name=data["name"], allowed_models=data["allowed_models"], actor=actor
            )
            services.team_pins_set(team=team, model_pins=data["model_pins"], actor=actor)
        messages.success(request, f"Team {data['name']} saved.")
        return redirect("console:admin_teams", tenant_slug=team.tenant.slug)
    context = {
        "team": team,
        "form": form,
        "versions": routing_selectors.model_versions(models=models),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "console/admin/team_edit.html", context, status=status)


@console_view(ADMIN)
def members(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    teams = selectors.teams_of_tenant(tenant=ctx.tenant)
    form = MemberAddForm(request.POST or None, teams=teams)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            # Always a new account: an existing username, whoever holds it, is refused.
            services.member_create(
                tenant=ctx.tenant,
                username=data["username"],
                email=data["email"],
                role=data["role"],
                teams=list(data["teams"]),
                password=data["password"] or None,
                actor=Actor.user(request.user),
            )
        except services.TenancyError as exc:
            form.add_error(exc.field or None, exc.message)
        else:
            role = Role(data["role"]).label.lower()
            messages.success(request, f"Account {data['username']} created: a {role}.")
            return redirect("console:admin_members", tenant_slug=ctx.tenant.slug)
    return render(
        request,
        "console/admin/members.html",
        {"members": selectors.members_of_tenant(tenant=ctx.tenant), "teams": teams, "form": form},
        status=400 if request.method == "POST" else 200,
    )


def _member(request: HttpRequest, membership_id: int) -> Membership:
    membership = selectors.member_of_tenant(
        tenant=console_context(request).tenant, membership_id=membership_id
    )
    # A tenant admin cannot change a platform admin's membership; only another platform admin can.
    if membership is None or (
        membership.role == Role.PLATFORM_ADMIN and not console_context(request).platform_admin
    ):
        raise Http404("no such member")
    return membership


@console_view(ADMIN)
def member_edit(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _member(request, membership_id)
    tenant = membership.tenant
    teams = selectors.teams_of_tenant(tenant=tenant)
    current = teams.filter(members=membership.user)
    form = MemberForm(
        request.POST or None, teams=teams, initial={"role": membership.role, "teams": current}
    )
    if request.method == "POST" and form.is_valid():
        services.member_update(
            membership=membership,
            role=form.cleaned_data["role"],
            teams=list(form.cleaned_data["teams"]),
            platform=console_context(request).platform_admin,
            actor=Actor.user(request.user),
        )
        messages.success(request, f"{membership.user.get_username()} updated.")
        return redirect("console:admin_members", tenant_slug=tenant.slug)
    return render(
        request, "console/admin/member_edit.html", {"membership": membership, "form": form}
    )


@console_view(ADMIN)
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _member(request, membership_id)
    if membership.user_id == request.user.pk:
        messages.error(request, "You cannot remove yourself.")
    else:
        services.membership_remove(membership=membership, actor=Actor.user(request.user))
        messages.success(request, f"{membership.user.get_username()} removed from the tenant.")
    return redirect("console:admin_members", tenant_slug=membership.tenant.slug)


@console_view(ADMIN)
def all_keys(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    keys = list(selectors.keys_of_tenant(tenant=ctx.tenant))
    usage = audit_selectors.key_usage(tenant=ctx.tenant, key_ids=[k.pk for k in keys])
    return render(
        request, "console/admin/keys.html", {"rows": [(k, usage.get(k.pk)) for k in keys]}
    )


@console_view(ADMIN)
def tenant_models(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    form = TenantModelsForm(
        request.POST or None,
        models=routing_selectors.models_of_gateway(),
        initial={"allowed_models": tenant.allowed_models},
    )
    if request.method == "POST" and form.is_valid():
        services.tenant_models_set(
            tenant=tenant,
            allowed_models=form.cleaned_data["allowed_models"],
            actor=Actor.user(request.user),
        )
        messages.success(request, "Models saved; the gateway applies them within seconds.")
        return redirect("console:admin_models", tenant_slug=tenant.slug)
    return render(request, "console/admin/models.html", {"form": form})


def _activity(request: HttpRequest) -> tuple[ActivityFilterForm, Any]:
    """The filters and the events they select (none when they are refused)."""
    form = ActivityFilterForm(request.GET or None)
    if form.refused:
        return form, ActivityEvent.objects.none()
    filters = form.cleaned_data if form.is_bound else {}
    events = activity_search(
        tenant_id=console_context(request).tenant.pk,
        q=filters.get("q", ""),
        action=filters.get("action", ""),
    )
    return form, events


@console_view(ADMIN, Role.COMPLIANCE)  # compliance reads the change history too
def activity(request: HttpRequest) -> HttpResponse:
    form, events = _activity(request)
    page: Any = Paginator(events, 50).get_page(request.GET.get("page"))
    template = "console/admin/activity.html"
    if request.htmx:  # type: ignore[attr-defined]
        template += "#results"  # search as you type swaps only the table
    kept = request.GET.copy()
    kept.pop("page", None)
    return render(
        request,
        template,
        {"form": form, "page": page, "filter_query": kept.urlencode()},
        status=400 if form.refused else 200,
    )


@console_view(ADMIN, Role.COMPLIANCE)
def activity_export(request: HttpRequest) -> HttpResponse:
    form, events = _activity(request)
    if form.refused:
        return refused_response(request, form, what="exported")
    tenant = console_context(request).tenant
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="activity-{tenant.slug}.csv"'
    writer = CsvWriter(response)
    writer.writerow(["occurred_at", "actor", "action", "target_type", "target", "details"])
    for event in events.iterator():
        writer.writerow(
            [
                event.occurred_at.isoformat(),
                event.actor_label,
                event.action,
                event.target_type,
                event.target_label,
                event.details,
            ]
        )
    return response

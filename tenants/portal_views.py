"""The developer portal: keys (create, rotate, revoke), usage and quickstart (the playground is
playground_views.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from audit import selectors as audit_selectors
from audit.activity.services import Actor
from billing.money import allocate
from gateway_site.console.access import console_context, console_view
from routing import selectors as routing_selectors
from tenants import selectors, services
from tenants.forms import KeyCreateForm, KeyRotateForm
from tenants.models import ApiKey, Role
from tenants.quotas import services as quotas
from tenants.quotas.key_limits import limits_for_key
from tenants.quotas.models import Scope
from tenants.snippets import gateway_url, quickstart_snippets

DEV = (Role.DEVELOPER, Role.TENANT_ADMIN)


def _manages_all_keys(request: HttpRequest) -> bool:
    return console_context(request).has_role(Role.TENANT_ADMIN)


def _teams(request: HttpRequest) -> Any:
    ctx = console_context(request)
    if _manages_all_keys(request):
        return selectors.teams_of_tenant(tenant=ctx.tenant)
    return selectors.teams_of_member(tenant=ctx.tenant, user=request.user)


def _key(request: HttpRequest, key_id: int) -> ApiKey:
    """A developer reaches their own keys; a tenant admin any key of the tenant."""
    ctx = console_context(request)
    owner = None if _manages_all_keys(request) else request.user
    key = selectors.key_of_tenant(tenant=ctx.tenant, key_id=key_id, owner=owner)
    if key is None:
        raise Http404("no such key")
    return key


def _key_form(request: HttpRequest, data: Any = None) -> KeyCreateForm:
    ctx = console_context(request)
    return KeyCreateForm(
        data, teams=_teams(request), models=routing_selectors.models_available(tenant=ctx.tenant)
    )


@console_view(*DEV)
def keys(request: HttpRequest) -> HttpResponse:
    return _keys_page(request)


def _keys_page(request: HttpRequest, form: KeyCreateForm | None = None) -> HttpResponse:
    ctx = console_context(request)
    my_keys = list(selectors.keys_of_owner(tenant=ctx.tenant, user=request.user))
    usage = audit_selectors.key_usage(tenant=ctx.tenant, key_ids=[k.pk for k in my_keys])
    return render(
        request,
        "console/keys.html",
        {
            "rows": [(key, usage.get(key.pk)) for key in my_keys],
            "form": form or _key_form(request),
            "has_teams": _teams(request).exists(),
        },
        status=400 if form is not None else 200,
    )


def _created(request: HttpRequest, key: ApiKey, plaintext: str, **extra: Any) -> HttpResponse:
    """The only page that ever shows a key's secret; it is not stored anywhere."""
    ctx = console_context(request)
    models = key.allowed_models or routing_selectors.models_available(
        tenant=ctx.tenant, team=key.team
    )
    snippets = quickstart_snippets(
        base_url=gateway_url(request), model=models[0] if models else "demo", key=plaintext
    )
    response = render(
        request,
        "console/key_created.html",
        {"key": key, "plaintext": plaintext, "snippets": snippets, **extra},
        status=201,
    )
    response["Cache-Control"] = "no-store"
    return response


@console_view(*DEV)
@require_POST
def key_create(request: HttpRequest) -> HttpResponse:
    form = _key_form(request, request.POST)
    if not form.is_valid():
        return _keys_page(request, form)
    data = form.cleaned_data
    team = data["team"]
    allowed = routing_selectors.models_available(tenant=console_context(request).tenant, team=team)
    chosen = [m for m in data["allowed_models"] if m in allowed]
    if data["allowed_models"] and not chosen:
        form.add_error("allowed_models", f"Team {team.name} may not use these models.")
        return _keys_page(request, form)
    if (
        selectors.keys_of_tenant(tenant=team.tenant)
        .filter(name=data["name"], revoked_at=None)
        .exists()
    ):
        form.add_error("name", "An active key of this tenant already has that name.")
        return _keys_page(request, form)
    actor = Actor.user(request.user)
    # The key and the limits chosen with it exist together or not at all.
    with transaction.atomic():
        key, material = services.key_create(
            team=team,
            name=data["name"],
            allowed_models=chosen,
            expires_at=form.expires_at(),
            owner=request.user,  # type: ignore[arg-type]
            actor=actor,
        )
        if data.get("requests_per_minute") or data.get("tokens_per_minute"):
            quotas.rate_limit_set(
                tenant=team.tenant,
                scope=Scope.KEY,
                api_key=key,
                requests_per_minute=data.get("requests_per_minute"),
                tokens_per_minute=data.get("tokens_per_minute"),
                actor=actor,
            )
        if data.get("budget_usd"):
            quotas.budget_set(
                tenant=team.tenant,
                scope=Scope.KEY,
                api_key=key,
                amount_usd=data["budget_usd"],
                period=data.get("budget_period") or "month",
                actor=actor,
            )
    return _created(request, key, material.plaintext, limits=limits_for_key(key))


@console_view(*DEV)
def key_detail(request: HttpRequest, key_id: int) -> HttpResponse:
    ctx = console_context(request)
    key = _key(request, key_id)
    usage = audit_selectors.key_usage(tenant=ctx.tenant, key_ids=[key.pk]).get(key.pk)
    recent = list(audit_selectors.key_recent_requests(tenant=ctx.tenant, key=key))
    # When the list holds every request of the key, its costs add up to the usage shown above.
    every = usage is not None and len(recent) == usage.requests
    costs = allocate([r.cost_usd for r in recent]) if every else [r.cost_usd for r in recent]
    return render(
        request,
        "console/key_detail.html",
        {
            "key": key,
            "usage": usage,
            "recent": list(zip(recent, costs, strict=True)),
            "limits": limits_for_key(key),
            "pins": selectors.pins_of_key(key=key),
            "rotate_form": KeyRotateForm(),
        },
    )


@console_view(*DEV)
@require_POST
def key_rotate(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _key(request, key_id)
    form = KeyRotateForm(request.POST)
    # A rotated key is on its way out: its successor is the one to rotate.
    if not form.is_valid() or key.revoked_at is not None or key.replaced_by_id is not None:
        messages.error(request, "This key cannot be rotated.")
        return redirect("console:key_detail", tenant_slug=key.tenant.slug, key_id=key.pk)
    if not _teams(request).filter(pk=key.team_id).exists():
        # Its owner left the key's team: a new key there would be one they may not create.
        messages.error(
            request,
            f"This key belongs to team '{key.team.name}', which you are no longer in: it cannot "
            "be rotated. You can still revoke it; a tenant admin can rotate it.",
        )
        return redirect("console:key_detail", tenant_slug=key.tenant.slug, key_id=key.pk)
    successor, material = services.key_rotate(
        key=key, grace=form.grace(), actor=Actor.user(request.user)
    )
    key.refresh_from_db()
    return _created(request, successor, material.plaintext, rotated=key)


@console_view(*DEV)
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = services.key_revoke(key=_key(request, key_id), actor=Actor.user(request.user))
    if request.htmx:  # type: ignore[attr-defined]
        ctx = console_context(request)
        usage = audit_selectors.key_usage(tenant=ctx.tenant, key_ids=[key.pk]).get(key.pk)
        return render(
            request,
            "console/partials/key_table.html#key-row",
            {"key": key, "usage": usage, "show_owner": request.POST.get("show_owner") == "1"},
        )
    messages.success(
        request, f"Key {key.prefix}… is revoked; the gateway refuses it within a second."
    )
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("console:key_detail", tenant_slug=key.tenant.slug, key_id=key.pk)


@console_view(*DEV)
def quickstart(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    models = routing_selectors.models_available(tenant=ctx.tenant)
    snippets = quickstart_snippets(
        base_url=gateway_url(request), model=models[0] if models else "demo", key=None
    )
    return render(request, "console/quickstart.html", {"snippets": snippets})

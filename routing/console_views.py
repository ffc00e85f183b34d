"""Console pages for providers, deployments and routes, under /console/t/<slug>/platform/.

They are shared by every tenant, so only platform admins see them. Writes go through the same
services as the YAML and the management API (routing/services.py), which keep the activity log;
the "new" form asks them to create only (`expect="new"`: never replaces an existing name, 409)
and an edit form to update only (`expect="existing"`: never creates one, 404/412).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from routing import selectors, services
from routing.forms import DeploymentForm, ProviderForm, RouteForm
from routing.models import Provider, Route
from tenants.models import Role

PLATFORM = Role.PLATFORM_ADMIN
TAKEN = "{what} '{name}' already exists: edit it instead (nothing was changed)."
GONE = "{what} '{name}' no longer exists: nothing was saved (create it anew)."


def _status(request: HttpRequest, form: Any, conflict: bool) -> int:
    if conflict:
        return 409
    if request.method == "POST":
        return 412 if form.errors.get("__all__") else 400
    return 200


# Providers -----------------------------------------------------------------------------------


@console_view(PLATFORM)
def providers(request: HttpRequest) -> HttpResponse:
    return render(request, "routing/providers.html", {"providers": selectors.providers_all()})


def _provider_save(
    request: HttpRequest, form: ProviderForm, *, creating: bool
) -> Provider | bool | None:
    """The provider saved; False when the create/update precondition fails; None when refused."""
    data = form.cleaned_data
    try:
        return services.provider_upsert(
            name=data["name"],
            kind=data["kind"],
            base_url=data["base_url"],
            credential=data["credential"] or None,
            region=data["region"],
            requests_per_minute=data["requests_per_minute"],
            tokens_per_minute=data["tokens_per_minute"],
            capacity_queue_seconds=data["capacity_queue_seconds"] or 0,
            actor=Actor.user(request.user),
            expect="new" if creating else "existing",
        )
    except services.Precondition:
        return False
    except services.ProviderRefused as refused:
        form.add_error(refused.field, str(refused.message))
        return None


@console_view(PLATFORM)
def provider_new(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = ProviderForm(request.POST or None)
    conflict = False
    if request.method == "POST" and form.is_valid():
        saved = _provider_save(request, form, creating=True)
        if saved is False:
            conflict = True
            form.add_error("name", TAKEN.format(what="Provider", name=form.cleaned_data["name"]))
        elif saved is not None:
            messages.success(request, f"Provider {form.cleaned_data['name']} created.")
            return redirect("routing:providers", tenant_slug=ctx.tenant.slug)
    return render(
        request,
        "routing/provider_form.html",
        {"form": form, "provider": None},
        status=_status(request, form, conflict),
    )


@console_view(PLATFORM)
def provider_edit(request: HttpRequest, name: str) -> HttpResponse:
    ctx = console_context(request)
    provider = selectors.providers_all().filter(name=name).first()
    if provider is None:
        raise Http404("no such provider")
    initial = {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "region": provider.region,
        "requests_per_minute": provider.requests_per_minute,
        "tokens_per_minute": provider.tokens_per_minute,
        "capacity_queue_seconds": provider.capacity_queue_seconds,
    }
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None:
        data["name"] = provider.name  # the name is the identity: never renamed here
    form = ProviderForm(data, initial=initial)
    form.fields["name"].disabled = True
    if request.method == "POST" and form.is_valid():
        saved = _provider_save(request, form, creating=False)
        if saved is False:
            form.add_error(None, GONE.format(what="Provider", name=name))
        elif saved is not None:
            messages.success(request, f"Provider {name} saved.")
            return redirect("routing:providers", tenant_slug=ctx.tenant.slug)
    return render(
        request,
        "routing/provider_form.html",
        {"form": form, "provider": provider},
        status=_status(request, form, False),
    )


# Deployments ---------------------------------------------------------------------------------


@console_view(PLATFORM)
def deployments(request: HttpRequest) -> HttpResponse:
    return render(request, "routing/deployments.html", {"deployments": selectors.deployments_all()})


def _deployment_save(request: HttpRequest, form: DeploymentForm, *, creating: bool) -> bool:
    data = form.cleaned_data
    try:
        services.deployment_upsert(
            name=data["name"],
            provider=data["provider"],
            upstream_model=data["upstream_model"],
            input_price_per_mtok=data["input_price_per_mtok"],
            output_price_per_mtok=data["output_price_per_mtok"],
            actor=Actor.user(request.user),
            expect="new" if creating else "existing",
        )
    except services.Precondition:
        return False
    return True


@console_view(PLATFORM)
def deployment_new(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = DeploymentForm(request.POST or None, providers=selectors.providers_all())
    conflict = False
    if request.method == "POST" and form.is_valid():
        if _deployment_save(request, form, creating=True):
            messages.success(request, f"Deployment {form.cleaned_data['name']} created.")
            return redirect("routing:deployments", tenant_slug=ctx.tenant.slug)
        conflict = True
        form.add_error("name", TAKEN.format(what="Deployment", name=form.cleaned_data["name"]))
    return render(
        request,
        "routing/deployment_form.html",
        {"form": form, "deployment": None},
        status=_status(request, form, conflict),
    )


@console_view(PLATFORM)
def deployment_edit(request: HttpRequest, name: str) -> HttpResponse:
    ctx = console_context(request)
    deployment = selectors.deployments_all().filter(name=name).first()
    if deployment is None:
        raise Http404("no such deployment")
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None:
        data["name"] = deployment.name
    form = DeploymentForm(
        data,
        providers=selectors.providers_all(),
        initial={
            "name": deployment.name,
            "provider": deployment.provider.name,
            "upstream_model": deployment.upstream_model,
            "input_price_per_mtok": deployment.input_price_per_mtok,
            "output_price_per_mtok": deployment.output_price_per_mtok,
        },
    )
    form.fields["name"].disabled = True
    if request.method == "POST" and form.is_valid():
        if _deployment_save(request, form, creating=False):
            messages.success(request, f"Deployment {name} saved.")
            return redirect("routing:deployments", tenant_slug=ctx.tenant.slug)
        form.add_error(None, GONE.format(what="Deployment", name=name))
    return render(
        request,
        "routing/deployment_form.html",
        {"form": form, "deployment": deployment},
        status=_status(request, form, False),
    )


# Routes --------------------------------------------------------------------------------------


@console_view(PLATFORM)
def routes(request: HttpRequest) -> HttpResponse:
    return render(request, "routing/routes.html", {"routes": selectors.routes_all()})


def _route_save(request: HttpRequest, form: RouteForm, *, creating: bool) -> bool | None:
    data = form.cleaned_data
    try:
        services.route_upsert(
            alias=data["alias"],
            description=data["description"],
            deployments=data["targets"],
            weights=data["weights"],
            strategy=data["strategy"],
            sticky=data["sticky"],
            timeout_seconds=data["timeout_seconds"],
            first_token_timeout_seconds=data["first_token_timeout_seconds"],
            hosted_tools=data["hosted_tools"],
            forward_hosted_tools=data["forward_hosted_tools"],
            cache_mode=data["cache_mode"],
            cache_ttl_seconds=data["cache_ttl_seconds"],
            cache_scope=data["cache_scope"],
            cache_similarity=data["cache_similarity"],
            actor=Actor.user(request.user),
            expect="new" if creating else "existing",
        )
    except services.Precondition:
        return False
    except services.RouteRefused as refused:
        form.add_error(refused.field, str(refused.message))
        return None
    return True


def _route_page(
    request: HttpRequest, form: RouteForm, route: Route | None, status: int
) -> HttpResponse:
    return render(
        request,
        "routing/route_form.html",
        {"form": form, "route": route, "targets": form.target_rows()},
        status=status,
    )


@console_view(PLATFORM)
def route_new(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = RouteForm(request.POST or None, deployments=selectors.deployments_all())
    conflict = False
    if request.method == "POST" and form.is_valid():
        saved = _route_save(request, form, creating=True)
        if saved:
            messages.success(request, f"Route {form.cleaned_data['alias']} created.")
            return redirect("routing:routes", tenant_slug=ctx.tenant.slug)
        if saved is False:
            conflict = True
            form.add_error("alias", TAKEN.format(what="Route", name=form.cleaned_data["alias"]))
    return _route_page(request, form, None, _status(request, form, conflict))


@console_view(PLATFORM)
def route_edit(request: HttpRequest, alias: str) -> HttpResponse:
    ctx = console_context(request)
    route = selectors.routes_all().filter(alias=alias).first()
    if route is None:
        raise Http404("no such route")
    initial: dict[str, Any] = {
        field: getattr(route, field)
        for field in (
            "alias",
            "description",
            "strategy",
            "sticky",
            "timeout_seconds",
            "first_token_timeout_seconds",
            "hosted_tools",
            "cache_mode",
            "cache_ttl_seconds",
            "cache_scope",
            "cache_similarity",
        )
    }
    initial["forward_hosted_tools"] = ", ".join(route.forward_hosted_tools or ())
    targets = list(route.targets.all())
    for index, target in enumerate(targets):
        initial[f"target_{index}"] = target.deployment.name
        initial[f"weight_{index}"] = target.weight
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None:
        data["alias"] = route.alias
    form = RouteForm(
        data, deployments=selectors.deployments_all(), initial=initial, slots=len(targets) + 1
    )
    form.fields["alias"].disabled = True
    if request.method == "POST" and form.is_valid():
        saved = _route_save(request, form, creating=False)
        if saved:
            messages.success(request, f"Route {alias} saved.")
            return redirect("routing:routes", tenant_slug=ctx.tenant.slug)
        if saved is False:
            form.add_error(None, GONE.format(what="Route", name=alias))
    return _route_page(request, form, route, _status(request, form, False))

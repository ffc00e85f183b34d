"""What the models and version pins of a tenant, team or key can be: the reads the key pages and
the pin checks share (the proxy computes the same from its cached routing table)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from gateway_site.api.errors import invalid_pins
from routing.core.model_names import WILDCARD, NamePatterns
from routing.models import Deployment, Provider, Route, RouteTarget
from tenants.models import Team, Tenant


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


def pattern_route_serving(*, model: str) -> str | None:
    """The alias of the pattern route (`claude-*`) that serves `model`, as the routing table
    resolves it: only for a name that is neither a route alias nor a deployment name."""
    if Route.objects.filter(alias=model, is_active=True).exists():
        return None
    if Deployment.objects.filter(name=model, is_active=True).exists():
        return None
    patterns = Route.objects.filter(is_active=True, alias__contains=WILDCARD)
    return NamePatterns.of(patterns.values_list("alias", flat=True)).match(model)


def deployments_serving(*, model: str) -> list[Deployment]:
    """The deployments a request for `model` may reach, as the routing table loads them: a live
    route's targets in order, else the deployment of that name, else the targets of the pattern
    route that matches it. These are what a pin may name."""
    live = Deployment.objects.filter(is_active=True, provider__is_active=True)
    alias = pattern_route_serving(model=model) or model
    route = Route.objects.filter(alias=alias, is_active=True).first()
    if route is not None:
        targets = route.targets.filter(deployment__in=live).select_related("deployment")
        if targets:
            return [target.deployment for target in targets]
    return list(live.filter(name=model))


def model_versions(*, models: list[str]) -> dict[str, list[Deployment]]:
    """The models among these that more than one deployment serves, with those deployments."""
    return {model: found for model in models if len(found := deployments_serving(model=model)) > 1}


def pin_problems(
    *,
    model_pins: dict[str, str],
    tenant: Tenant,
    team_models: list[str],
    key_models: list[str] | None = None,
) -> dict[str, str]:
    """{model: why it cannot be pinned so}; empty when each pin names a version the proxy would
    serve that model with, for a key with these allowed lists (the team's: `key_models` None)."""
    usable = models_usable(tenant=tenant, team_models=team_models, key_models=key_models)
    problems: dict[str, str] = {}
    for model, version in model_pins.items():
        model, version = model.strip(), version.strip()
        if not model or not version:
            problems[model or "(empty)"] = "a pin maps a model name to a deployment name"
        elif model not in usable and pattern_route_serving(model=model) not in usable:
            problems[model] = f"'{model}' is not a model this team or key may use"
        else:
            problems.update(_version_problem(model, version))
    return problems


def _version_problem(model: str, version: str) -> dict[str, str]:
    deployments = deployments_serving(model=model)
    if any(version in (d.name, d.upstream_model) for d in deployments):
        return {}
    if not deployments:
        return {model: f"'{model}' has no live deployment now, so it cannot be pinned"}
    choices = ", ".join(f"{d.name} (upstream {d.upstream_model})" for d in deployments)
    return {model: f"'{model}' has no deployment '{version}'; pin one of: {choices}"}


def check_pins(
    tenant: Tenant,
    model_pins: dict[str, str],
    *,
    team_models: list[str],
    key_models: list[str] | None = None,
) -> None:
    """For the management API: a 422 naming each pin whose model the caller may not use or whose
    version it lacks."""
    problems = pin_problems(
        model_pins=model_pins, tenant=tenant, team_models=team_models, key_models=key_models
    )
    if problems:
        raise invalid_pins(problems)


# --- the platform's lists (the management API) ------------------------------------------------


def providers_all() -> QuerySet[Provider]:
    return Provider.objects.order_by("name")


def deployments_all() -> QuerySet[Deployment]:
    return Deployment.objects.select_related("provider").order_by("name")


def active_route_aliases() -> list[str]:
    return list(Route.objects.filter(is_active=True).values_list("alias", flat=True))


def routes_all() -> QuerySet[Route]:
    targets = Prefetch("targets", queryset=RouteTarget.objects.select_related("deployment"))
    return Route.objects.prefetch_related(targets).order_by("alias")

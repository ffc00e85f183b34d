"""Providers, deployments and routes: shared by every tenant, so platform keys only.

PUT creates or replaces, like the YAML does for the same names (gateway_site/declarative/services.py);
`If-None-Match: *` makes it create only, `If-Match: *` update only.
"""

from __future__ import annotations

import re

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Router
from ninja.pagination import paginate

from gateway_site.api.common import one_or_404, platform_scope, put_precondition
from gateway_site.api.errors import ApiError, invalid
from routing import selectors as routing_selectors
from routing import services
from routing.api_schemas import (
    DeploymentIn,
    DeploymentOut,
    ProviderIn,
    ProviderOut,
    RouteIn,
    RouteOut,
)
from routing.core.model_names import alias_problem
from routing.core.translate.responses_tools import hosted_tool_problem
from routing.models import Deployment, Provider, Route

router = Router(tags=["platform"])

_NAME = r"^[a-z0-9][a-z0-9_-]*$"
_DEPLOYMENT_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9._:-]*$"


@router.get("/providers", response=list[ProviderOut], summary="List providers (platform)")
@paginate
def provider_list(request: HttpRequest) -> QuerySet[Provider]:
    platform_scope(request)
    return routing_selectors.providers_all()


@router.get("/providers/{name}", response=ProviderOut, summary="Get a provider (platform)")
def provider_get(request: HttpRequest, name: str) -> Provider:
    platform_scope(request)
    return one_or_404(routing_selectors.providers_all().filter(name=name), f"Provider '{name}'")


@router.put(
    "/providers/{name}",
    response=ProviderOut,
    summary="Create or replace a provider (platform); the credential is write-only",
    description=(
        "Omit `credential` to keep the stored one, except when `base_url` moves to another "
        "scheme, host or port: then send it again (422 `credential_required`). Every "
        "`base_url` must pass the egress policy (422 `egress_refused`, docs/config.md)."
    ),
)
def provider_put(request: HttpRequest, name: str, payload: ProviderIn) -> Provider:
    scope = platform_scope(request)
    _check_name(name, _NAME, max_length=64)
    put_precondition(
        request, routing_selectors.providers_all().filter(name=name), f"Provider '{name}'"
    )
    try:
        return services.provider_upsert(
            name=name,
            kind=payload.kind,
            base_url=payload.base_url,
            credential=payload.credential,
            region=payload.region,
            requests_per_minute=payload.requests_per_minute,
            tokens_per_minute=payload.tokens_per_minute,
            capacity_queue_seconds=payload.capacity_queue_seconds,
            actor=scope.actor,
        )
    except services.ProviderRefused as refused:
        message = str(refused.message)
        field = [{"field": refused.field, "message": message}]
        raise ApiError(422, refused.code or "validation_error", message, field) from refused


@router.get("/deployments", response=list[DeploymentOut], summary="List deployments (platform)")
@paginate
def deployment_list(request: HttpRequest) -> QuerySet[Deployment]:
    platform_scope(request)
    return routing_selectors.deployments_all()


@router.get("/deployments/{name}", response=DeploymentOut, summary="Get a deployment (platform)")
def deployment_get(request: HttpRequest, name: str) -> Deployment:
    platform_scope(request)
    return one_or_404(routing_selectors.deployments_all().filter(name=name), f"Deployment '{name}'")


@router.put(
    "/deployments/{name}",
    response=DeploymentOut,
    summary="Create or replace a deployment (platform)",
)
def deployment_put(request: HttpRequest, name: str, payload: DeploymentIn) -> Deployment:
    scope = platform_scope(request)
    _check_name(name, _DEPLOYMENT_NAME)
    put_precondition(
        request, routing_selectors.deployments_all().filter(name=name), f"Deployment '{name}'"
    )
    provider = routing_selectors.providers_all().filter(name=payload.provider).first()
    if provider is None:
        raise invalid("provider", f"no provider '{payload.provider}'")
    return services.deployment_upsert(
        name=name,
        provider=provider,
        upstream_model=payload.upstream_model,
        input_price_per_mtok=payload.input_price_per_mtok,
        output_price_per_mtok=payload.output_price_per_mtok,
        actor=scope.actor,
    )


@router.get("/routes", response=list[RouteOut], summary="List routes (platform)")
@paginate
def route_list(request: HttpRequest) -> QuerySet[Route]:
    platform_scope(request)
    return routing_selectors.routes_all()


@router.get("/routes/{alias}", response=RouteOut, summary="Get a route (platform)")
def route_get(request: HttpRequest, alias: str) -> Route:
    platform_scope(request)
    return one_or_404(routing_selectors.routes_all().filter(alias=alias), f"Route '{alias}'")


@router.put(
    "/routes/{alias}",
    response=RouteOut,
    summary="Create or replace a route (platform); its targets become exactly these, in order",
    description=(
        "The alias may be a pattern with `*` as its only wildcard (`claude-*`, `gpt-5*`): it "
        "serves every model name it matches that is neither a route alias nor a deployment "
        "name, the most specific pattern first (docs/config.md, 'Route name patterns')."
    ),
)
def route_put(request: HttpRequest, alias: str, payload: RouteIn) -> Route:
    scope = platform_scope(request)
    if problem := alias_problem(alias):
        raise invalid("alias", f"'{alias}' is not a valid route alias: {problem}")
    put_precondition(
        request, routing_selectors.routes_all().filter(alias=alias), f"Route '{alias}'"
    )
    names = [target.deployment for target in payload.targets]
    found = {d.name: d for d in routing_selectors.deployments_all().filter(name__in=names)}
    for index, target_name in enumerate(names):
        if target_name not in found:
            raise invalid(f"targets[{index}].deployment", f"no deployment '{target_name}'")
    if len(set(names)) != len(names):
        raise invalid("targets", "a deployment may appear only once")
    for index, kind in enumerate(payload.forward_hosted_tools):
        if problem := hosted_tool_problem(kind):
            raise invalid(f"forward_hosted_tools[{index}]", problem)
    route = services.route_upsert(
        alias=alias,
        description=payload.description,
        deployments=[found[n] for n in names],
        weights=[target.weight for target in payload.targets],
        strategy=payload.strategy,
        sticky=payload.sticky,
        timeout_seconds=payload.timeout_seconds,
        first_token_timeout_seconds=payload.first_token_timeout_seconds,
        hosted_tools=payload.hosted_tools,
        forward_hosted_tools=payload.forward_hosted_tools,
        cache_mode=payload.cache_mode,
        cache_ttl_seconds=payload.cache_ttl_seconds,
        cache_scope=payload.cache_scope,
        cache_similarity=payload.cache_similarity,
        actor=scope.actor,
    )
    return routing_selectors.routes_all().get(pk=route.pk)


def _check_name(name: str, pattern: str, max_length: int = 128) -> None:
    if not re.fullmatch(pattern, name) or len(name) > max_length:
        raise invalid("name", f"'{name}' is not a valid name (letters, digits, '-', '_')")

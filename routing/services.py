"""Writes for providers, deployments and routes."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.activity.services import SYSTEM, Actor, activity_record
from routing.core.egress import EgressRefused, url_origin
from routing.core.model_names import alias_problem
from routing.core.translate.responses_tools import hosted_tool_problem
from routing.egress import egress_url_check
from routing.models import Deployment, Provider, Route, RouteTarget


class ProviderRefused(ValidationError):
    """A provider write the service refuses: `code` says why, `field` names the input at fault."""

    def __init__(self, *, code: str, field: str, message: str) -> None:
        super().__init__(message, code=code)
        self.field = field


def _provider_url_refusal(
    provider: Provider, *, base_url: str, credential: str | None
) -> ProviderRefused | None:
    try:
        egress_url_check(base_url)
    except EgressRefused as refusal:
        return ProviderRefused(
            code="egress_refused",
            field="base_url",
            message=f"base_url is not allowed by the egress policy: {refusal}",
        )
    # The stored credential was given for the old host: sending it to a new one (another
    # scheme, host or port) needs the credential again, so whoever changes where it goes
    # must know it. A new path on the same origin keeps it.
    moved = provider.pk is not None and url_origin(provider.base_url) != url_origin(base_url)
    if moved and credential is None and provider.credential_encrypted:
        return ProviderRefused(
            code="credential_required",
            field="credential",
            message=(
                "base_url moves this provider to another scheme, host or port: send its "
                "credential again in the same request (the stored one is not sent elsewhere)"
            ),
        )
    return None


class Precondition(Exception):
    """`expect="new"` met an existing name, or `expect="existing"` a missing one: nothing changed.
    `status` is 409 for a create that would overwrite, 412 for an update that would create."""

    def __init__(self, what: str, name: str, *, exists: bool) -> None:
        state = "already exists: edit it instead" if exists else "does not exist: create it"
        super().__init__(f"{what} '{name}' {state} (nothing was changed).")
        self.status = 409 if exists else 412


def _expect(expect: str, *, exists: bool, what: str, name: str) -> None:
    """Create never overwrites (`expect="new"`), update never creates (`expect="existing"`);
    the YAML's and the API's PUT keep `expect="any"`, create or replace."""
    if (expect == "new" and exists) or (expect == "existing" and not exists):
        raise Precondition(what, name, exists=exists)


class RouteRefused(ValidationError):
    """A route the service refuses: its alias (routing/core/model_names.py says which are
    valid), or a hosted tool type it may not forward."""

    def __init__(self, message: str, *, field: str = "alias") -> None:
        super().__init__(message, code=f"invalid_{field}")
        self.field = field


@transaction.atomic
def provider_upsert(
    *,
    name: str,
    kind: str,
    base_url: str,
    credential: str | None,
    region: str,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    capacity_queue_seconds: float = 0,
    actor: Actor = SYSTEM,
    expect: str = "any",
) -> Provider:
    """Create or update a provider. `credential` None keeps the stored one, unless `base_url`
    moves to another origin (refused then); every base URL must pass the egress policy.
    Raises `ProviderRefused` and changes nothing when refused."""
    found = Provider.objects.select_for_update().filter(name=name).first()
    _expect(expect, exists=found is not None, what="Provider", name=name)
    provider = found or Provider(name=name)
    if refusal := _provider_url_refusal(provider, base_url=base_url, credential=credential):
        raise refusal
    provider.kind, provider.base_url, provider.region = kind, base_url, region
    provider.requests_per_minute = requests_per_minute
    provider.tokens_per_minute = tokens_per_minute
    provider.capacity_queue_seconds = capacity_queue_seconds
    credential_changed = credential is not None and (
        not provider.credential_encrypted or provider.get_credential() != credential
    )
    if credential_changed:
        provider.set_credential(credential or "")
    created = provider.pk is None
    provider.save()
    activity_record(
        actor=actor,
        action="provider.create" if created else "provider.update",
        target=provider,
        tenant_id=None,
        # Never the credential itself.
        details={
            "kind": kind,
            "base_url": base_url,
            "region": region,
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
            "credential_changed": credential_changed,
        },
    )
    return provider


@transaction.atomic
def deployment_upsert(
    *,
    name: str,
    provider: Provider,
    upstream_model: str,
    input_price_per_mtok: Decimal,
    output_price_per_mtok: Decimal,
    actor: Actor = SYSTEM,
    expect: str = "any",
) -> Deployment:
    exists = Deployment.objects.select_for_update().filter(name=name).exists()
    _expect(expect, exists=exists, what="Deployment", name=name)
    deployment, created = Deployment.objects.update_or_create(
        name=name,
        defaults={
            "provider": provider,
            "upstream_model": upstream_model,
            "input_price_per_mtok": input_price_per_mtok,
            "output_price_per_mtok": output_price_per_mtok,
        },
    )
    activity_record(
        actor=actor,
        action="deployment.create" if created else "deployment.update",
        target=deployment,
        tenant_id=None,
        details={
            "provider": provider.name,
            "upstream_model": upstream_model,
            "input_price_per_mtok": str(input_price_per_mtok),
            "output_price_per_mtok": str(output_price_per_mtok),
        },
    )
    return deployment


@transaction.atomic
def route_upsert(
    *,
    alias: str,
    description: str,
    deployments: list[Deployment],
    weights: list[int] | None = None,
    strategy: str = Route.Strategy.ORDERED,
    sticky: bool = False,
    timeout_seconds: float | None = None,
    first_token_timeout_seconds: float | None = None,
    hosted_tools: str = Route.HostedTools.REFUSE,
    forward_hosted_tools: list[str] | None = None,
    cache_mode: str = Route.CacheMode.OFF,
    cache_ttl_seconds: int = 3600,
    cache_scope: str = Route.CacheScope.TENANT,
    cache_similarity: float | None = None,
    actor: Actor = SYSTEM,
    expect: str = "any",
) -> Route:
    """Create or update a route; its targets become exactly `deployments`, in that order.
    Raises `RouteRefused` for an alias that is neither a name nor a pattern as documented."""
    if problem := alias_problem(alias):
        raise RouteRefused(f"'{alias}' is not a valid route alias: {problem}")
    forward = list(dict.fromkeys(forward_hosted_tools or ()))
    if problem := next(filter(None, map(hosted_tool_problem, forward)), None):
        raise RouteRefused(problem, field="forward_hosted_tools")
    exists = Route.objects.select_for_update().filter(alias=alias).exists()
    _expect(expect, exists=exists, what="Route", name=alias)
    route, created = Route.objects.update_or_create(
        alias=alias,
        defaults={
            "description": description,
            "strategy": strategy,
            "sticky": sticky,
            "timeout_seconds": timeout_seconds,
            "first_token_timeout_seconds": first_token_timeout_seconds,
            "hosted_tools": hosted_tools,
            "forward_hosted_tools": forward,
            "cache_mode": cache_mode,
            "cache_ttl_seconds": cache_ttl_seconds,
            "cache_scope": cache_scope,
            "cache_similarity": cache_similarity,
        },
    )
    route.targets.exclude(deployment__in=deployments).delete()
    for position, deployment in enumerate(deployments):
        weight = 1 if weights is None else weights[position]
        RouteTarget.objects.update_or_create(
            route=route, deployment=deployment, defaults={"position": position, "weight": weight}
        )
    activity_record(
        actor=actor,
        action="route.create" if created else "route.update",
        target=route,
        tenant_id=None,
        details={
            "strategy": strategy,
            "deployments": [d.name for d in deployments],
            "weights": weights,
            "sticky": sticky,
            "hosted_tools": hosted_tools,
            "forward_hosted_tools": forward,
            "cache_mode": cache_mode,
            "cache_ttl_seconds": cache_ttl_seconds,
            "cache_scope": cache_scope,
            "cache_similarity": cache_similarity,
        },
    )
    return route

"""Writes for providers, deployments and routes."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from activity.services import SYSTEM, Actor, activity_record
from routing.models import Deployment, Provider, Route, RouteTarget


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
) -> Provider:
    provider = Provider.objects.filter(name=name).first() or Provider(name=name)
    provider.kind, provider.base_url, provider.region = kind, base_url, region
    provider.requests_per_minute = requests_per_minute
    provider.tokens_per_minute = tokens_per_minute
    provider.capacity_queue_seconds = capacity_queue_seconds
    if credential is not None and (
        not provider.credential_encrypted or provider.get_credential() != credential
    ):
        provider.set_credential(credential)
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
        },
    )
    return provider


def deployment_upsert(
    *,
    name: str,
    provider: Provider,
    upstream_model: str,
    input_price_per_mtok: Decimal,
    output_price_per_mtok: Decimal,
    actor: Actor = SYSTEM,
) -> Deployment:
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
    actor: Actor = SYSTEM,
) -> Route:
    """Create or update a route; its targets become exactly `deployments`, in that order."""
    route, created = Route.objects.update_or_create(
        alias=alias,
        defaults={
            "description": description,
            "strategy": strategy,
            "sticky": sticky,
            "timeout_seconds": timeout_seconds,
            "first_token_timeout_seconds": first_token_timeout_seconds,
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
        },
    )
    return route

"""Purging cached answers: by tenant, route or prompt version (writes; the proxy only reads)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.activity.services import Actor, activity_record
from gateway_site.redis_clients import sync_client
from routing.cache.core.keys import key_pattern
from routing.cache.models import SemanticEntry
from routing.models import Route
from tenants.models import Tenant


class PurgeError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Purged:
    answers: int  # exact-store entries removed (Redis; 0 without Redis)
    questions: int  # semantic entries removed (PostgreSQL)


def _redis_purge(pattern: str) -> int:
    """Every process shares Redis; without it each worker's answers live in its own memory and
    expire with their TTL (or a restart)."""
    if not settings.REDIS_URL:
        return 0
    client = sync_client()
    removed, batch = 0, []
    try:
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += int(client.unlink(*batch))
                batch = []
        if batch:
            removed += int(client.unlink(*batch))
    finally:
        client.close()
    return removed


def cache_purge(
    *,
    actor: Actor,
    tenant: Tenant | None = None,
    route: str | None = None,
    prompt: str | None = None,
    everything: bool = False,
) -> Purged:
    """Remove the cached answers that match every filter given: a tenant, a route alias, a
    registry prompt ("name" or "name@version", within the tenant). Nothing given: refused
    unless `everything`."""
    if prompt and tenant is None:
        raise PurgeError("A prompt belongs to a tenant: name the tenant too.")
    if tenant is None and route is None and not everything:
        raise PurgeError("Name a tenant, a route or both (or purge everything explicitly).")
    name, _, version = (prompt or "").partition("@")
    if version and not version.isdigit():
        raise PurgeError(f"'{prompt}' is not 'name' or 'name@version'.")
    questions = SemanticEntry.objects.all()
    if tenant is not None:
        questions = questions.filter(tenant=tenant)
    if route is not None:
        questions = questions.filter(route_alias=route)
    if name:
        questions = questions.filter(prompt_name=name)
    if version:
        questions = questions.filter(prompt_version=int(version))
    removed, _ = questions.delete()
    pattern = key_pattern(
        tenant_id=tenant.pk if tenant is not None else None, route=route, prompt=prompt or None
    )
    purged = Purged(answers=_redis_purge(pattern), questions=removed)
    target: models.Model | None = tenant or Route.objects.filter(alias=route or "").first()
    if target is not None:
        activity_record(
            actor=actor,
            action="cache.purge",
            target=target,
            tenant_id=tenant.pk if tenant is not None else None,
            details={
                "route": route,
                "prompt": prompt,
                "answers": purged.answers,
                "questions": purged.questions,
            },
        )
    return purged


def cache_expire() -> int:
    """Drop semantic entries past their TTL (their answers already expired in the store)."""
    removed, _ = SemanticEntry.objects.filter(expires_at__lte=timezone.now()).delete()
    return removed

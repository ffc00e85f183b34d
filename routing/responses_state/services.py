"""Writes of stored responses: keep a turn, delete one, purge the expired, set a retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.activity.services import SYSTEM, Actor, activity_record
from audit.storable import storable
from routing.core.types import JSON
from routing.responses_state.items import as_kept
from routing.responses_state.models import ResponsesPolicy, StoredResponse
from tenants.models import Tenant


def response_keep(
    *,
    tenant_id: int,
    api_key_id: int,
    request_id: str,
    response: JSON,
    input_items: list[JSON],
    previous_response_id: str | None,
    model: str,
    content_mode: str,
    retention_days: int,
) -> StoredResponse:
    """Keep one answered turn as the tenant's content mode allows; a response id is kept once."""
    items, kept = as_kept(mode=content_mode, items=input_items, response=response)
    # Text PostgreSQL refuses (NUL, lone surrogates) is kept escaped, read back exactly.
    (items, kept), escaped = storable([items, kept])
    now = timezone.now()
    return StoredResponse.objects.create(
        response_id=str(response["id"]),
        tenant_id=tenant_id,
        api_key_id=api_key_id,
        request_id=request_id,
        previous_response_id=previous_response_id or "",
        model=model[:200],
        content_mode=content_mode,
        input_items=items,
        response=kept,
        stored_escaped=escaped,
        created_at=now,
        expires_at=now + timedelta(days=retention_days),
    )


def response_delete(*, tenant_id: int, response_id: str) -> bool:
    """Delete the tenant's response; False when it has none of that id (or it expired)."""
    deleted, _ = StoredResponse.objects.filter(
        tenant_id=tenant_id, response_id=response_id, expires_at__gt=timezone.now()
    ).delete()
    return deleted > 0


def responses_purge(*, now: datetime | None = None) -> int:
    """Delete every stored response past its tenant's retention; how many went."""
    deleted, _ = StoredResponse.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


@transaction.atomic
def responses_retention_set(
    *, tenant: Tenant, retention_days: int, actor: Actor = SYSTEM
) -> ResponsesPolicy:
    """How long the tenant's responses are kept from now on (those kept already keep theirs).
    Setting the days it already has changes nothing and records nothing."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    current = ResponsesPolicy.objects.select_for_update().filter(tenant=tenant).first()
    if current is not None and current.retention_days == retention_days:
        return current
    policy, created = ResponsesPolicy.objects.update_or_create(
        tenant=tenant, defaults={"retention_days": retention_days}
    )
    activity_record(
        actor=actor,
        action="responses_policy.create" if created else "responses_policy.update",
        target=policy,
        tenant_id=tenant.id,
        details={"retention_days": retention_days},
    )
    return policy

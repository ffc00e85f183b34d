"""Reads of stored responses: always by tenant, never an expired one."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from audit.storable import original
from routing.core.types import JSON
from routing.responses_state.models import ResponsesPolicy, StoredResponse


@dataclass(frozen=True, slots=True)
class KeptResponse:
    """A stored response as it was kept (odd characters restored)."""

    response_id: str
    content_mode: str
    input_items: list[JSON]
    response: JSON


def response_get(*, tenant_id: int, response_id: str) -> KeptResponse | None:
    """The tenant's stored response of that id, or None (unknown, another tenant's, expired or
    deleted: the caller cannot tell which)."""
    row = StoredResponse.objects.filter(
        tenant_id=tenant_id, response_id=response_id, expires_at__gt=timezone.now()
    ).first()
    if row is None:
        return None
    items, response = original([row.input_items, row.response], escaped=row.stored_escaped)
    return KeptResponse(row.response_id, row.content_mode, items, response)


def retention_days(*, tenant_id: int) -> int:
    policy = ResponsesPolicy.objects.filter(tenant_id=tenant_id).first()
    return policy.retention_days if policy else settings.GATEWAY_RESPONSES_RETENTION_DAYS

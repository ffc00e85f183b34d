"""Reads of stored responses: always by tenant, never an expired one."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from routing.responses_state.models import ResponsesPolicy, StoredResponse


def response_get(*, tenant_id: int, response_id: str) -> StoredResponse | None:
    """The tenant's stored response of that id, or None (unknown, another tenant's, expired or
    deleted: the caller cannot tell which)."""
    return StoredResponse.objects.filter(
        tenant_id=tenant_id, response_id=response_id, expires_at__gt=timezone.now()
    ).first()


def retention_days(*, tenant_id: int) -> int:
    policy = ResponsesPolicy.objects.filter(tenant_id=tenant_id).first()
    return policy.retention_days if policy else settings.GATEWAY_RESPONSES_RETENTION_DAYS

"""Reads of stored responses: always by tenant, never an expired one."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from audit.storable import original
from routing.core.types import JSON
from routing.responses_state.models import (
    Conversation,
    ConversationItem,
    ResponsesPolicy,
    StoredResponse,
)


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


@dataclass(frozen=True, slots=True)
class KeptConversation:
    conversation_id: str
    content_mode: str
    metadata: JSON
    created_at: int  # Unix seconds, as the API shows it


def _conversation(tenant_id: int, conversation_id: str) -> Conversation | None:
    return Conversation.objects.filter(
        tenant_id=tenant_id, conversation_id=conversation_id, expires_at__gt=timezone.now()
    ).first()


def _kept(row: Conversation) -> KeptConversation:
    return KeptConversation(
        row.conversation_id, row.content_mode, dict(row.metadata), int(row.created_at.timestamp())
    )


def conversation_get(*, tenant_id: int, conversation_id: str) -> KeptConversation | None:
    """The tenant's live conversation of that id, or None (unknown, another tenant's, expired
    or deleted: the caller cannot tell which)."""
    row = _conversation(tenant_id, conversation_id)
    return None if row is None else _kept(row)


def conversation_items(
    *, tenant_id: int, conversation_id: str
) -> tuple[KeptConversation, list[JSON]] | None:
    """The conversation and all its items, oldest first (odd characters restored)."""
    row = _conversation(tenant_id, conversation_id)
    if row is None:
        return None
    items = [
        original(item.item, escaped=item.stored_escaped)
        for item in ConversationItem.objects.filter(conversation=row).order_by("id")
    ]
    return _kept(row), items

"""Writes of stored responses: keep a turn, delete one, purge the expired, set a retention."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.activity.services import SYSTEM, Actor, activity_record
from audit.storable import storable
from routing.core.types import JSON
from routing.responses_state.items import as_kept, items_as_kept, strictest
from routing.responses_state.models import (
    Conversation,
    ConversationItem,
    ResponsesPolicy,
    StoredResponse,
)
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


def conversations_purge(*, now: datetime | None = None) -> int:
    """Delete every conversation past its tenant's retention (its items with it); how many."""
    doomed = Conversation.objects.filter(expires_at__lte=now or timezone.now())
    count = doomed.count()
    doomed.delete()
    return count


class DuplicateItem(ValueError):
    def __init__(self, item_id: str) -> None:
        super().__init__(f"item '{item_id}' is already in the conversation")
        self.item_id = item_id


def _live(tenant_id: int, conversation_id: str) -> Conversation | None:
    return (
        Conversation.objects.select_for_update()
        .filter(tenant_id=tenant_id, conversation_id=conversation_id, expires_at__gt=timezone.now())
        .first()
    )


def _add_items(
    conversation: Conversation,
    items: list[JSON],
    *,
    mode: str,
    response_id: str = "",
    end_user: str = "",
) -> list[ConversationItem]:
    kept, escaped = storable(items_as_kept(mode=mode, items=items))
    now = timezone.now()
    return ConversationItem.objects.bulk_create(
        ConversationItem(
            conversation=conversation,
            item_id=str(item.get("id") or "")[:80],
            item=stored,
            stored_escaped=escaped,
            response_id=response_id,
            end_user=end_user,
            created_at=now,
        )
        for item, stored in zip(items, kept, strict=True)
    )


@transaction.atomic
def conversation_create(
    *,
    tenant_id: int,
    api_key_id: int,
    conversation_id: str,
    metadata: JSON,
    items: list[JSON],
    content_mode: str,
    retention_days: int,
    end_user: str = "",
) -> Conversation:
    """A new conversation with its first items (each with an id), kept as the mode allows."""
    now = timezone.now()
    conversation = Conversation.objects.create(
        conversation_id=conversation_id,
        tenant_id=tenant_id,
        api_key_id=api_key_id,
        metadata=metadata,
        content_mode=content_mode,
        created_at=now,
        expires_at=now + timedelta(days=retention_days),
    )
    _add_items(conversation, items, mode=content_mode, end_user=end_user)
    return conversation


@transaction.atomic
def conversation_append(
    *,
    tenant_id: int,
    conversation_id: str,
    items: list[JSON],
    content_mode: str,
    retention_days: int,
    response_id: str = "",
    known_ids: Literal["refuse", "skip"] = "refuse",
    end_user: str = "",
) -> Conversation | None:
    """Add items at the end (a turn's input and output, or the client's own); the
    conversation's retention starts again. None when the tenant has no such conversation.
    An item whose id the conversation holds already is refused (`DuplicateItem`) or skipped."""
    conversation = _live(tenant_id, conversation_id)
    if conversation is None:
        return None
    taken = set(
        ConversationItem.objects.filter(
            conversation=conversation, item_id__in=[str(i.get("id")) for i in items]
        ).values_list("item_id", flat=True)
    )
    if taken and known_ids == "refuse":
        raise DuplicateItem(sorted(taken)[0])
    items = [item for item in items if str(item.get("id")) not in taken]
    mode = strictest(conversation.content_mode, content_mode)
    _add_items(conversation, items, mode=mode, response_id=response_id, end_user=end_user)
    conversation.content_mode = mode
    conversation.expires_at = timezone.now() + timedelta(days=retention_days)
    conversation.save(update_fields=["content_mode", "expires_at"])
    return conversation


@transaction.atomic
def conversation_update(
    *, tenant_id: int, conversation_id: str, metadata: JSON
) -> Conversation | None:
    """Replace the metadata; None when the tenant has no such conversation (never creates)."""
    conversation = _live(tenant_id, conversation_id)
    if conversation is None:
        return None
    conversation.metadata = metadata
    conversation.save(update_fields=["metadata"])
    return conversation


def conversation_delete(*, tenant_id: int, conversation_id: str) -> bool:
    """Delete the conversation and its items; False when the tenant has none of that id."""
    deleted, _ = Conversation.objects.filter(
        tenant_id=tenant_id, conversation_id=conversation_id, expires_at__gt=timezone.now()
    ).delete()
    return deleted > 0


@transaction.atomic
def conversation_item_delete(
    *, tenant_id: int, conversation_id: str, item_id: str
) -> Conversation | None:
    """Delete one item; None when the tenant has no such conversation or it no such item."""
    conversation = _live(tenant_id, conversation_id)
    if conversation is None:
        return None
    deleted, _ = ConversationItem.objects.filter(
        conversation=conversation, item_id=item_id
    ).delete()
    return conversation if deleted else None


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


def erased_copies_forget(
    *, tenant_id: int, request_ids: list[str], end_user: str = "", **_: Any
) -> int:
    """An end user's records were erased (audit.signals.records_erased): their stored responses,
    the conversation items their turns added, and the items they added directly go too."""
    responses = StoredResponse.objects.filter(tenant_id=tenant_id, request_id__in=request_ids)
    turns = ["resp_" + request_id.removeprefix("req_") for request_id in request_ids]
    mine = Q(response_id__in=turns)
    if end_user:
        mine |= Q(response_id="", end_user=end_user)
    items = ConversationItem.objects.filter(mine, conversation__tenant_id=tenant_id)
    return responses.delete()[0] + items.delete()[0]

"""OpenAI's Conversations API on the proxy (`/v1/conversations`, its items), tenant-scoped.

A conversation is a list of Responses items kept by the gateway: created with up to 20 items,
added to by the client or by each `POST /v1/responses` turn that names it (`conversation`), read
back in pages, deleted item by item or whole. Text is kept as the tenant's audit content mode
allows (masked or metadata-only tenants keep no raw text, and cannot continue from it); a
conversation expires its tenant's retention after its last change. Another tenant's id, an
expired or a deleted one all answer the same 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from audit.content import ContentModes
from gateway_site.db_threads import run_db
from routing.core.types import JSON
from routing.errors import GatewayError
from routing.responses_state import selectors, services
from routing.responses_state.items import turn_input

MAX_ITEMS = 20  # per create or add call, as OpenAI's
_MAX_METADATA = 16
_modes = ContentModes(ttl=30.0)


def not_found(conversation_id: str, param: str = "conversation_id") -> GatewayError:
    return GatewayError(
        404,
        f"Conversation with id '{conversation_id}' not found.",
        code="conversation_not_found",
        param=param,
    )


def item_not_found(conversation_id: str, item_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"Item with id '{item_id}' not found in conversation '{conversation_id}'.",
        code="item_not_found",
        param="item_id",
    )


def conversation_object(row: selectors.KeptConversation) -> JSON:
    return {
        "id": row.conversation_id,
        "object": "conversation",
        "created_at": row.created_at,
        "metadata": row.metadata,
    }


def valid_metadata(metadata: Any) -> JSON:
    """OpenAI's metadata rules: at most 16 string pairs, keys ≤ 64 and values ≤ 512 characters."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or len(metadata) > _MAX_METADATA:
        raise GatewayError(
            400,
            "'metadata' must be an object of at most 16 string key-value pairs.",
            code="invalid_value",
            param="metadata",
        )
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            raise GatewayError(
                400,
                f"'metadata.{key[:64]}': keys are at most 64 characters, values strings of at "
                "most 512.",
                code="invalid_value",
                param="metadata",
            )
    return dict(metadata)


def valid_items(raw: Any, param: str = "items") -> list[JSON]:
    """Items as they are kept: each an object with a type (or a role: a message), with an id."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        raise GatewayError(
            400,
            f"'{param}' must be a list of at most {MAX_ITEMS} items.",
            code="invalid_value",
            param=param,
        )
    for n, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("type") or item.get("role"), str):
            raise GatewayError(
                400,
                f"'{param}[{n}]' must be an item object with a 'type' (or a message's 'role').",
                code="invalid_value",
                param=f"{param}[{n}]",
            )
        if item.get("type", "message") == "message" and item.get("role") not in (
            "user",
            "assistant",
            "system",
            "developer",
        ):
            raise GatewayError(
                400,
                f"'{param}[{n}].role' must be one of user, assistant, system, developer.",
                code="invalid_value",
                param=f"{param}[{n}].role",
            )
    items = turn_input(raw, "resp_" + uuid.uuid4().hex) or []
    ids = [item.get("id") for item in items]
    if len(set(ids)) < len(ids):
        raise GatewayError(
            400, f"Two of '{param}' have the same id.", code="invalid_value", param=param
        )
    return items


def _mode(tenant_id: int) -> str:
    return _modes.modes([tenant_id])[tenant_id]


async def create(*, tenant_id: int, api_key_id: int, body: JSON, end_user: str = "") -> JSON:
    metadata = valid_metadata(body.get("metadata"))
    items = valid_items(body.get("items"))
    conversation_id = "conv_" + uuid.uuid4().hex

    def write() -> selectors.KeptConversation:
        services.conversation_create(
            tenant_id=tenant_id,
            api_key_id=api_key_id,
            conversation_id=conversation_id,
            metadata=metadata,
            items=items,
            content_mode=_mode(tenant_id),
            retention_days=selectors.retention_days(tenant_id=tenant_id),
            end_user=end_user,
        )
        row = selectors.conversation_get(tenant_id=tenant_id, conversation_id=conversation_id)
        assert row is not None
        return row

    return conversation_object(await run_db(write))


async def retrieve(*, tenant_id: int, conversation_id: str) -> JSON:
    row = await run_db(
        lambda: selectors.conversation_get(tenant_id=tenant_id, conversation_id=conversation_id)
    )
    if row is None:
        raise not_found(conversation_id)
    return conversation_object(row)


async def update(*, tenant_id: int, conversation_id: str, body: JSON) -> JSON:
    if "metadata" not in body:
        raise GatewayError(
            400, "'metadata' is required.", code="missing_required_parameter", param="metadata"
        )
    metadata = valid_metadata(body.get("metadata"))
    updated = await run_db(
        lambda: services.conversation_update(
            tenant_id=tenant_id, conversation_id=conversation_id, metadata=metadata
        )
    )
    if updated is None:
        raise not_found(conversation_id)
    return await retrieve(tenant_id=tenant_id, conversation_id=conversation_id)


async def delete(*, tenant_id: int, conversation_id: str) -> JSON:
    deleted = await run_db(
        lambda: services.conversation_delete(tenant_id=tenant_id, conversation_id=conversation_id)
    )
    if not deleted:
        raise not_found(conversation_id)
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


def _page(items: list[JSON], *, has_more: bool) -> JSON:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0].get("id") if items else None,
        "last_id": items[-1].get("id") if items else None,
        "has_more": has_more,
    }


async def items_add(
    *, tenant_id: int, conversation_id: str, body: JSON, end_user: str = ""
) -> JSON:
    items = valid_items(body.get("items"))
    if not items:
        raise GatewayError(
            400, "'items' must hold at least one item.", code="invalid_value", param="items"
        )

    def write() -> list[JSON] | None:
        try:
            added = services.conversation_append(
                tenant_id=tenant_id,
                conversation_id=conversation_id,
                items=items,
                content_mode=_mode(tenant_id),
                retention_days=selectors.retention_days(tenant_id=tenant_id),
                end_user=end_user,
            )
        except services.DuplicateItem as duplicate:
            raise GatewayError(
                400,
                f"Item '{duplicate.item_id}' is already in conversation '{conversation_id}'.",
                code="invalid_value",
                param="items",
            ) from None
        if added is None:
            return None
        found = selectors.conversation_items(tenant_id=tenant_id, conversation_id=conversation_id)
        assert found is not None
        return found[1][-len(items) :]  # as kept (masked for a private tenant)

    kept = await run_db(write)
    if kept is None:
        raise not_found(conversation_id)
    return _page(kept, has_more=False)


async def items_list(
    *, tenant_id: int, conversation_id: str, after: str | None, limit: int, order: str
) -> JSON:
    """A page of the conversation's items, newest first by default (OpenAI's)."""
    if not 1 <= limit <= 100:
        raise GatewayError(
            400, "'limit' must be between 1 and 100.", code="invalid_value", param="limit"
        )
    if order not in ("asc", "desc"):
        raise GatewayError(
            400, "'order' must be 'asc' or 'desc'.", code="invalid_value", param="order"
        )
    found = await run_db(
        lambda: selectors.conversation_items(tenant_id=tenant_id, conversation_id=conversation_id)
    )
    if found is None:
        raise not_found(conversation_id)
    items = found[1] if order == "asc" else list(reversed(found[1]))
    start = 0
    if after:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise item_not_found(conversation_id, after)
        start = ids.index(after) + 1
    return _page(items[start : start + limit], has_more=start + limit < len(items))


async def item_get(*, tenant_id: int, conversation_id: str, item_id: str) -> JSON:
    found = await run_db(
        lambda: selectors.conversation_items(tenant_id=tenant_id, conversation_id=conversation_id)
    )
    if found is None:
        raise not_found(conversation_id)
    for item in found[1]:
        if item.get("id") == item_id:
            return item
    raise item_not_found(conversation_id, item_id)


async def item_delete(*, tenant_id: int, conversation_id: str, item_id: str) -> JSON:
    """Delete one item; the answer is the conversation, as OpenAI's."""

    def write() -> selectors.KeptConversation | bool | None:
        if selectors.conversation_get(tenant_id=tenant_id, conversation_id=conversation_id) is None:
            return None
        if (
            services.conversation_item_delete(
                tenant_id=tenant_id, conversation_id=conversation_id, item_id=item_id
            )
            is None
        ):
            return False
        return selectors.conversation_get(tenant_id=tenant_id, conversation_id=conversation_id)

    row = await run_db(write)
    if row is None:
        raise not_found(conversation_id)
    if row is False:
        raise item_not_found(conversation_id, item_id)
    assert isinstance(row, selectors.KeptConversation)
    return conversation_object(row)

"""Where the proxy meets stored responses: a Responses request's turn, before and after.

Before: `previous_response_id` is looked up (tenant-scoped) and the whole input rebuilt for the
stateless upstream: the earlier context (its input items and output) followed by the new input.
After: with `store` (true unless the client says false, as OpenAI's), the answered turn is
kept before the client gets its answer (a stream: before its last event), so a client that
continues at once finds it. Only a request that stores or continues touches the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction

from audit.content import ContentModes
from audit.models import ContentMode
from audit.writer import failed_write_reason
from gateway_site.db_threads import run_db
from routing.core.types import JSON
from routing.errors import GatewayError
from routing.responses_state import conversations, selectors, services
from routing.responses_state.items import turn_input

if TYPE_CHECKING:
    from audit.entries import AuditEntry
    from routing.caller import Caller

logger = logging.getLogger(__name__)

Keeper = Callable[[JSON], Awaitable[bool]]
_POLICY_TTL_S = 30.0


def not_found(response_id: str) -> GatewayError:
    """The same answer for unknown, expired, deleted and another tenant's: nothing to probe."""
    return GatewayError(
        404,
        f"No response with id '{response_id}' was found.",
        code="response_not_found",
        param="response_id",
    )


@dataclass(frozen=True, slots=True)
class Turn:
    """One Responses request as the upstream must see it, and whether to keep its answer."""

    body: JSON  # the request with the whole input, without `previous_response_id`
    store: bool
    previous_response_id: str | None
    input_items: list[JSON]  # the whole context, with ids (what `input_items` will list)
    conversation_id: str | None = None  # `conversation`: read before, appended to after
    new_items: tuple[JSON, ...] = ()  # this turn's own input, with ids

    def link(self, entry: AuditEntry) -> None:
        """The turn's audit record names the response it continues and its conversation."""
        if self.previous_response_id:
            entry.client_context["previous_response_id"] = self.previous_response_id
        if self.conversation_id:
            entry.client_context["conversation_id"] = self.conversation_id


class ResponseState:
    """Per worker: the tenants' content modes and retentions, cached briefly."""

    def __init__(self) -> None:
        self._modes = ContentModes(ttl=_POLICY_TTL_S)
        self._retention: dict[int, tuple[int, float]] = {}

    async def begin(self, caller: Caller, raw: JSON, response_id: str) -> Turn:
        store = raw.get("store", True)
        if store is not None and not isinstance(store, bool):
            raise GatewayError(
                400, "'store' must be true or false.", code="invalid_type", param="store"
            )
        previous = raw.get("previous_response_id")
        conversation = _conversation_id(raw.get("conversation"))
        if previous is not None and conversation is not None:
            raise GatewayError(
                400,
                "Mutually exclusive parameters: Ensure you are only providing one of: "
                "'previous_response_id' or 'conversation'.",
                code="mutually_exclusive_parameters",
                param="conversation",
            )
        body = {k: v for k, v in raw.items() if k not in ("previous_response_id", "conversation")}
        new_items = turn_input(raw.get("input"), response_id)
        context: list[JSON] = []
        if previous is not None:
            context = await self._context_of(caller, previous)
        if conversation is not None:
            context = await self._conversation_context(caller, conversation)
            raw["conversation"] = {"id": conversation}  # echoed on the response, as OpenAI's
        if new_items is not None:
            body["input"] = context + new_items
        elif context:
            body["input"] = context  # `input` absent: the earlier context alone
        items = body.get("input") if isinstance(body.get("input"), list) else []
        return Turn(
            body,
            store is not False,
            previous,
            list(items or []),
            conversation,
            tuple(new_items or ()),
        )

    async def _conversation_context(self, caller: Caller, conversation_id: str) -> list[JSON]:
        tenant_id = caller.identity.tenant_id
        found = await run_db(
            lambda: selectors.conversation_items(
                tenant_id=tenant_id, conversation_id=conversation_id
            )
        )
        if found is None:
            raise conversations.not_found(conversation_id, param="conversation")
        row, items = found
        if row.content_mode != ContentMode.FULL:
            raise GatewayError(
                400,
                f"Conversation '{conversation_id}' cannot be continued: your tenant's audit "
                f"content mode is '{row.content_mode}', so the gateway keeps no raw text to "
                "continue from. Send the whole conversation in 'input' instead.",
                code="conversation_content_not_kept",
                param="conversation",
            )
        return items

    async def _context_of(self, caller: Caller, previous: Any) -> list[JSON]:
        if not isinstance(previous, str) or not previous:
            raise GatewayError(
                400,
                "'previous_response_id' must be a response id (a non-empty string).",
                code="invalid_value",
                param="previous_response_id",
            )
        tenant_id = caller.identity.tenant_id
        row = await run_db(
            lambda: selectors.response_get(tenant_id=tenant_id, response_id=previous)
        )
        if row is None:
            # OpenAI's own answer, which clients such as Codex recognise (they resend in full).
            raise GatewayError(
                400,
                f"Previous response with id '{previous}' not found.",
                code="previous_response_not_found",
                param="previous_response_id",
            )
        if row.content_mode != ContentMode.FULL:
            raise GatewayError(
                400,
                f"Response '{previous}' cannot be continued: your tenant's audit content mode "
                f"is '{row.content_mode}', so the gateway keeps no raw text of responses to "
                "continue from. Send the whole conversation in 'input' instead.",
                code="previous_response_content_not_kept",
                param="previous_response_id",
            )
        return [*row.input_items, *(row.response.get("output") or [])]

    def keeper(self, caller: Caller, turn: Turn, model: str) -> Keeper | None:
        """What keeps the answer of `turn` (and adds the turn to its conversation); None when
        the client asked not to store it and named no conversation."""
        if not turn.store and not turn.conversation_id:
            return None

        async def keep(response: JSON) -> bool:
            try:
                await run_db(lambda: self._keep(caller, turn, model, response))
            except Exception as error:
                # The client still gets its answer (paid for, audited), marked "store": false.
                # Logged without the row: a refused row's DETAIL quotes the answer.
                logger.error(
                    "could not store response %s (%s)",
                    response.get("id"),
                    failed_write_reason(error),
                )
                return False
            return True

        return keep

    @transaction.atomic
    def _keep(self, caller: Caller, turn: Turn, model: str, response: JSON) -> None:
        tenant_id = caller.identity.tenant_id
        mode = self._modes.modes([tenant_id])[tenant_id]
        if turn.conversation_id:
            output = [item for item in response.get("output") or () if isinstance(item, dict)]
            appended = services.conversation_append(
                tenant_id=tenant_id,
                conversation_id=turn.conversation_id,
                items=[*turn.new_items, *output],
                content_mode=mode,
                retention_days=self._retention_days(tenant_id),
                response_id=str(response.get("id") or ""),
                known_ids="skip",  # an item resent from the conversation is not added twice
            )
            if appended is None:  # deleted while the turn ran: nothing to add it to
                logger.warning("conversation %s went during its turn", turn.conversation_id)
        if not turn.store:
            return
        services.response_keep(
            tenant_id=tenant_id,
            api_key_id=caller.identity.key_id,
            request_id=caller.request_id,
            response=response,
            input_items=turn.input_items,
            previous_response_id=turn.previous_response_id,
            model=model,
            content_mode=mode,
            retention_days=self._retention_days(tenant_id),
        )

    def _retention_days(self, tenant_id: int) -> int:
        now = time.monotonic()
        cached = self._retention.get(tenant_id)
        if cached is None or cached[1] < now:
            cached = (selectors.retention_days(tenant_id=tenant_id), now + _POLICY_TTL_S)
            self._retention[tenant_id] = cached
        return cached[0]


def _conversation_id(value: Any) -> str | None:
    """`conversation`: an id, or an object with one (OpenAI's two forms)."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise GatewayError(
            400,
            "'conversation' must be a conversation id or an object with its 'id'.",
            code="invalid_value",
            param="conversation",
        )
    return value


async def retrieve(*, tenant_id: int, response_id: str) -> JSON:
    row = await run_db(lambda: selectors.response_get(tenant_id=tenant_id, response_id=response_id))
    if row is None:
        raise not_found(response_id)
    return dict(row.response)


async def cancel(*, tenant_id: int, response_id: str) -> JSON:
    """Only a background response can be cancelled, and the gateway runs none: every stored
    response has finished (another tenant's, as always, does not exist)."""
    await retrieve(tenant_id=tenant_id, response_id=response_id)
    raise GatewayError(
        400,
        f"Response '{response_id}' cannot be cancelled: only background responses can be, and "
        "this gateway runs none ('background' is refused), so it has already finished.",
        code="response_not_cancellable",
        param="response_id",
    )


async def delete(*, tenant_id: int, response_id: str) -> JSON:
    deleted = await run_db(
        lambda: services.response_delete(tenant_id=tenant_id, response_id=response_id)
    )
    if not deleted:
        raise not_found(response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


async def input_items(
    *, tenant_id: int, response_id: str, after: str | None, limit: int, order: str
) -> JSON:
    """A page of the items the response was given, OpenAI's list shape (newest first by
    default, as OpenAI's)."""
    if not 1 <= limit <= 100:
        raise GatewayError(
            400, "'limit' must be between 1 and 100.", code="invalid_value", param="limit"
        )
    if order not in ("asc", "desc"):
        raise GatewayError(
            400, "'order' must be 'asc' or 'desc'.", code="invalid_value", param="order"
        )
    row = await run_db(lambda: selectors.response_get(tenant_id=tenant_id, response_id=response_id))
    if row is None:
        raise not_found(response_id)
    items = list(row.input_items) if order == "asc" else list(reversed(row.input_items))
    start = 0
    if after:
        ids = [item.get("id") if isinstance(item, dict) else None for item in items]
        if after not in ids:
            raise GatewayError(
                400,
                f"No input item with id '{after}' in response '{response_id}'.",
                code="invalid_value",
                param="after",
            )
        start = ids.index(after) + 1
    page = items[start : start + limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": start + limit < len(items),
    }

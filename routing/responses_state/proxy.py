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

from audit.content import ContentModes
from audit.models import ContentMode
from gateway_site.db_threads import run_db
from routing.core.types import JSON
from routing.errors import GatewayError
from routing.responses_state import selectors, services
from routing.responses_state.items import turn_input

if TYPE_CHECKING:
    from routing.call import Caller

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
        body = {k: v for k, v in raw.items() if k != "previous_response_id"}
        new_items = turn_input(raw.get("input"), response_id)
        context: list[JSON] = []
        if previous is not None:
            context = await self._context_of(caller, previous)
        if new_items is not None:
            body["input"] = context + new_items
        elif context:
            body["input"] = context  # `input` absent: the earlier context alone
        items = body.get("input") if isinstance(body.get("input"), list) else []
        return Turn(body, store is not False, previous, list(items or []))

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
        """What keeps the answer of `turn`; None when the client asked not to store it."""
        if not turn.store:
            return None

        async def keep(response: JSON) -> bool:
            try:
                await run_db(lambda: self._keep(caller, turn, model, response))
            except Exception:
                # The client still gets its answer (paid for, audited), marked "store": false.
                logger.exception("could not store response %s", response.get("id"))
                return False
            return True

        return keep

    def _keep(self, caller: Caller, turn: Turn, model: str, response: JSON) -> None:
        tenant_id = caller.identity.tenant_id
        services.response_keep(
            tenant_id=tenant_id,
            api_key_id=caller.identity.key_id,
            request_id=caller.request_id,
            response=response,
            input_items=turn.input_items,
            previous_response_id=turn.previous_response_id,
            model=model,
            content_mode=self._modes.modes([tenant_id])[tenant_id],
            retention_days=self._retention_days(tenant_id),
        )

    def _retention_days(self, tenant_id: int) -> int:
        now = time.monotonic()
        cached = self._retention.get(tenant_id)
        if cached is None or cached[1] < now:
            cached = (selectors.retention_days(tenant_id=tenant_id), now + _POLICY_TTL_S)
            self._retention[tenant_id] = cached
        return cached[0]


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

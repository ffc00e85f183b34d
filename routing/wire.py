"""The client's wire format. The gateway works in OpenAI's; Anthropic clients get theirs back.

One object per request (a stream's conversion keeps state between events).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from routing.core.sse import event_data
from routing.core.translate import (
    ChatToResponsesStream,
    OpenAIToAnthropicStream,
    ResponseContext,
    openai_error_to_anthropic,
    openai_response_to_anthropic,
    openai_response_to_responses,
)
from routing.core.translate.anthropic_common import anthropic_id
from routing.core.translate.responses_native import FINAL_EVENTS, RESPONSE_EVENTS
from routing.core.translate.responses_response import responses_event
from routing.core.types import JSON


class OpenAIWire:
    name = "openai"

    def body(self, openai_body: bytes, parsed: JSON) -> bytes:
        return openai_body  # byte for byte as the provider (or the adapter) produced it

    def events(self, event: bytes) -> list[bytes]:
        return [event]

    def finish(self) -> list[bytes]:
        return []

    async def close(self) -> list[bytes]:
        """A stream's closing events, once whatever must happen before them has happened."""
        return self.finish()

    def native_events(self, event: bytes) -> list[bytes]:
        """An event of a stream the provider sent in the client's own format."""
        return [event]

    async def close_native(self) -> list[bytes]:
        """The closing events of such a stream (those held back until the answer is kept)."""
        return []

    async def settle_body(self, body: bytes) -> bytes:
        """A whole answer, once whatever must happen before the client gets it has happened."""
        return body

    def error_body(self, status: int, openai_error: bytes) -> bytes:
        return openai_error

    def error_event(self, openai_error: bytes) -> bytes:
        return b"data: " + openai_error + b"\n\n"

    def headers(self, request_id: str) -> dict[str, str]:
        """Headers the client's own API sends on every answer, beyond the gateway's."""
        return {}

    def failure_status(self, status: int, upstream_status: int | None) -> int:
        """The status a client of this format gets when no deployment could answer."""
        return status

    def tool_calls(self, calls: list[JSON]) -> list[JSON]:
        """The answer's tool calls as the record keeps them: with the ids the client was given,
        so compliance finds a call by the id the client's logs show."""
        return calls


class AnthropicWire(OpenAIWire):
    name = "anthropic"

    def __init__(self, input_tokens: Callable[[], int] | None = None) -> None:
        # What the prompt counts, for `message_start` when the provider says it only at the end.
        self._stream = OpenAIToAnthropicStream(input_tokens)

    def headers(self, request_id: str) -> dict[str, str]:
        return {"request-id": request_id}  # Anthropic's SDKs read it as the request's id

    def failure_status(self, status: int, upstream_status: int | None) -> int:
        # Anthropic's clients know 529 (overloaded) and back off on it; OpenAI's get 503.
        return 529 if upstream_status == 529 else status

    def body(self, openai_body: bytes, parsed: JSON) -> bytes:
        return orjson.dumps(openai_response_to_anthropic(parsed))

    def events(self, event: bytes) -> list[bytes]:
        data = event_data(event)
        if data is None:
            return []
        if data == b"[DONE]":
            return self._stream.finish()
        return self._stream.feed(orjson.loads(data))

    def finish(self) -> list[bytes]:
        return self._stream.finish()

    def error_body(self, status: int, openai_error: bytes) -> bytes:
        return openai_error_to_anthropic(status, openai_error)

    def tool_calls(self, calls: list[JSON]) -> list[JSON]:
        # The client saw `toolu_…` (routing/core/translate/anthropic_common.py, anthropic_id).
        return [{**call, "id": anthropic_id(call.get("id"), "toolu_")} for call in calls]

    def error_event(self, openai_error: bytes) -> bytes:
        return b"event: error\ndata: " + openai_error_to_anthropic(500, openai_error) + b"\n\n"


class ResponsesWire(OpenAIWire):
    """OpenAI's Responses API; its errors are OpenAI's, so only answers and streams change.

    An answer from a Responses-native deployment (routing/responses_native.py) is the
    provider's own: only the fields the gateway governs are rewritten (the response id, so it
    leads to the audit record and can be continued here; `store`, `previous_response_id`,
    `conversation` as the gateway handled them); every other event passes byte for byte."""

    name = "responses"

    def __init__(
        self, context: ResponseContext, keeper: Callable[[JSON], Awaitable[bool]] | None = None
    ) -> None:
        self.context = context
        self._stream = ChatToResponsesStream(context)
        # Stores the response (`store`), True when kept: before the client sees the answer.
        self._keeper = keeper
        self._ours = b'{"id":"' + context.response_id.encode() + b'"'  # a translated body
        self._final: JSON | None = None  # a native stream's last event, until it is kept
        self._native_seq: int | None = None  # the last sequence number a native stream gave

    def body(self, openai_body: bytes, parsed: JSON) -> bytes:
        return orjson.dumps(openai_response_to_responses(parsed, self.context))

    def events(self, event: bytes) -> list[bytes]:
        data = event_data(event)
        if data is None or data == b"[DONE]":
            return []  # the closing events come from `close`, once the response is kept
        return self._stream.feed(orjson.loads(data))

    def finish(self) -> list[bytes]:
        return self._stream.finish()

    async def close(self) -> list[bytes]:
        events = self._stream.finish()
        final = self._stream.final
        if self._keeper is not None and final is not None and not await self._keeper(final):
            events[-1] = self._stream.restate_final(store=False)
        return events

    async def settle_body(self, body: bytes) -> bytes:
        native = not body.startswith(self._ours)
        if self._keeper is None and not native:
            return body
        response = orjson.loads(body)
        if native:
            response = self._governed(response)
            body = orjson.dumps(response)
        if self._keeper is None or await self._keeper(response):
            return body
        return orjson.dumps({**response, "store": False})

    def _governed(self, response: JSON) -> JSON:
        context = self.context
        governed = {
            **response,
            "id": context.response_id,
            "previous_response_id": context.previous_response_id,
            "store": context.store,
        }
        if context.request.get("conversation") is not None:
            governed["conversation"] = context.request["conversation"]
        return governed

    def native_events(self, event: bytes) -> list[bytes]:
        data = event_data(event)
        if data is None:
            return [event]
        message = orjson.loads(data)
        kind = message.get("type") if isinstance(message, dict) else None
        if isinstance(message, dict) and isinstance(message.get("sequence_number"), int):
            self._native_seq = message["sequence_number"]
        if kind not in RESPONSE_EVENTS or not isinstance(message.get("response"), dict):
            return [event]
        message = {**message, "response": self._governed(message["response"])}
        if kind in FINAL_EVENTS:
            self._final = message  # sent once the response is kept
            return []
        return [responses_event(kind, message)]

    async def close_native(self) -> list[bytes]:
        message, self._final = self._final, None
        if message is None:
            return []
        response = message["response"]
        if self._keeper is not None and not await self._keeper(response):
            message = {**message, "response": {**response, "store": False}}
        return [responses_event(str(message["type"]), message)]

    def error_event(self, openai_error: bytes) -> bytes:
        # After a native stream's events, numbered after the provider's (clients order by it).
        return self._stream.error(openai_error, after=self._native_seq)

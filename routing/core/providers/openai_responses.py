"""OpenAI-compatible providers that also speak the Responses API (`POST /responses`): OpenAI
itself, and servers that implement it.

Everything but a Responses request goes through the chat form exactly as `OpenAIAdapter` sends
it. A `/v1/responses` request the gateway did not change (`native`) is sent as the client sent
it, the model replaced (and what the gateway governs: routing/responses_native.py); the answer
comes back byte for byte (`Reply.native`, or a stream of the provider's own events) beside the
internal chat form the gateway reads it through (routing/core/translate/responses_native.py),
so hosted tools, reasoning items and every field the chat form has no room for reach the client.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import orjson

from routing.core.errors import UpstreamError
from routing.core.providers.base import ChatStream, StreamedAnswer, read_json, relay_translated
from routing.core.providers.openai import OpenAIAdapter
from routing.core.sse import EventReader
from routing.core.stream_tap import StreamTap
from routing.core.translate.responses_native import (
    FAILED_EVENTS,
    ResponsesToChatStream,
    responses_to_chat,
)
from routing.core.types import JSON, Reply, Target, Usage

RESPONSES_KIND = "openai-responses"


def _stream_error(message: JSON) -> UpstreamError:
    error = message.get("error") or (message.get("response") or {}).get("error") or {}
    if not isinstance(error, dict):
        error = {}
    body = {
        "error": {
            "message": str(error.get("message") or "The provider failed the response."),
            "type": "upstream_error",
            "param": None,
            "code": error.get("code") or "stream_error",
        }
    }
    return UpstreamError(
        "provider reported an error mid-stream",
        status=None,
        cause="stream_error",
        body=orjson.dumps(body),
    )


class OpenAIResponsesAdapter(OpenAIAdapter):
    kind = RESPONSES_KIND

    async def chat(
        self,
        target: Target,
        payload: JSON,
        *,
        client_headers: Mapping[str, str] | None = None,
        native: JSON | None = None,
    ) -> Reply:
        if native is None:
            return await super().chat(target, payload, client_headers=client_headers)
        body = {**native, "model": target.upstream_model}
        body.pop("stream", None)
        response = await self.post_json(
            self._url(target, "/responses"), self._headers(target), body
        )
        if response.status_code >= 400:
            raise self.error_from(response.status_code, response.headers, response.content)
        parsed = responses_to_chat(read_json(response.content))
        return Reply(
            status=response.status_code,
            body=orjson.dumps(parsed),
            parsed=parsed,
            usage=Usage.from_openai(parsed["usage"]),
            native=response.content,
        )

    async def chat_stream(
        self,
        target: Target,
        payload: JSON,
        *,
        client_wants_usage: bool,
        client_headers: Mapping[str, str] | None = None,
        native: JSON | None = None,
        native_events: bool = False,
    ) -> ChatStream:
        """`native_events`: relay the provider's own events (no response guardrail needs to
        read them in the internal form as they stream)."""
        if native is None:
            return await super().chat_stream(target, payload, client_wants_usage=client_wants_usage)
        headers = {**self._headers(target), "accept": "text/event-stream"}
        body = {**native, "model": target.upstream_model, "stream": True}
        response = await self.open_stream(self._url(target, "/responses"), headers, body)
        tap = StreamTap()
        reader = EventReader(response.aiter_raw())
        return ChatStream(
            events=self._relay_responses(
                response, reader, tap, client_wants_usage, native=native_events
            ),
            tap=tap,
            upstream_status=response.status_code,
            native=native_events,
            received=reader.received,
        )

    def _relay_responses(
        self,
        response: StreamedAnswer,
        reader: EventReader,
        tap: StreamTap,
        client_wants_usage: bool,
        *,
        native: bool,
    ) -> AsyncGenerator[bytes, None]:
        translator = ResponsesToChatStream()
        tap.hosted_calls = translator.hosted
        return relay_translated(
            response,
            reader,
            translator,
            tap,
            client_wants_usage=client_wants_usage,
            native=native,
            failed=lambda message: (
                _stream_error(message) if message.get("type") in FAILED_EVENTS else None
            ),
            end_event="response.completed",
            keep_comments=True,
        )

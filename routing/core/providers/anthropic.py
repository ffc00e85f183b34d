"""Anthropic's Messages API behind the gateway's OpenAI-format contract.

Requests, answers, streams and error bodies are translated by `routing.core.translate`; this
module only does the HTTP and keeps the same contract as the pass-through OpenAI adapter.

`native`: an Anthropic Messages body from an Anthropic client. It is sent as it is (only the
model replaced), and the answer comes back byte for byte beside its internal form (`Reply.native`,
or a `ChatStream` of the provider's own events), so nothing the translation cannot carry
(thinking, output_config, context_management, cache_control, server tools) is lost.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import orjson

from routing.core.errors import UpstreamError, cause_for_status, parse_retry_after
from routing.core.providers.base import (
    ChatStream,
    ProviderAdapter,
    StreamedAnswer,
    read_json,
    relay_translated,
)
from routing.core.sse import EventReader
from routing.core.stream_tap import StreamTap
from routing.core.translate.anthropic_common import anthropic_error_to_openai, openai_error
from routing.core.translate.anthropic_request import openai_request_to_anthropic
from routing.core.translate.anthropic_response import anthropic_response_to_openai
from routing.core.translate.anthropic_stream import AnthropicToOpenAIStream
from routing.core.types import JSON, Reply, Target, Usage

ANTHROPIC_VERSION = "2023-06-01"
# The client's headers an Anthropic-format provider receives (an `anthropic` SDK or agent CLI
# picks its API version and opts into beta features with them); nothing else is passed on.
FORWARDED_CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")


def _event_error(message: JSON) -> UpstreamError:
    return UpstreamError(
        "provider reported an error mid-stream",
        status=None,
        cause="stream_error",
        body=anthropic_error_to_openai(500, orjson.dumps(message)),
    )


class AnthropicAdapter(ProviderAdapter):
    kind = "anthropic"

    def _headers(
        self, target: Target, client_headers: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        headers = {
            "x-api-key": target.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
            "accept": "application/json",
        }
        for name in FORWARDED_CLIENT_HEADERS:
            if value := (client_headers or {}).get(name):
                headers[name] = value
        return headers

    def _url(self, target: Target) -> str:
        base = target.base_url.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        return base + "/v1/messages"

    def _body(
        self, target: Target, payload: JSON, *, stream: bool, native: JSON | None = None
    ) -> JSON:
        if native is not None:
            return {**native, "model": target.upstream_model}
        body = openai_request_to_anthropic(payload)
        body["model"] = body.get("model") or target.upstream_model
        body.pop("stream", None)
        if stream:
            body["stream"] = True
        return body

    async def chat(
        self,
        target: Target,
        payload: JSON,
        *,
        client_headers: Mapping[str, str] | None = None,
        native: JSON | None = None,
    ) -> Reply:
        response = await self.post_json(
            self._url(target),
            self._headers(target, client_headers),
            self._body(target, payload, stream=False, native=native),
        )
        if response.status_code >= 400:
            raise self.error_from(response.status_code, response.headers, response.content)
        parsed = anthropic_response_to_openai(read_json(response.content))
        return Reply(
            status=response.status_code,
            body=orjson.dumps(parsed),
            parsed=parsed,
            usage=Usage.from_openai(parsed["usage"]),
            native=response.content if native is not None else None,
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
        """`native_events`: relay the provider's own events (a native request whose answer no
        response guardrail needs to read in the internal form)."""
        headers = {**self._headers(target, client_headers), "accept": "text/event-stream"}
        response = await self.open_stream(
            self._url(target), headers, self._body(target, payload, stream=True, native=native)
        )
        tap = StreamTap()
        relay_native = native is not None and native_events
        reader = EventReader(response.aiter_bytes())
        return ChatStream(
            events=self._relay(response, reader, tap, client_wants_usage, native=relay_native),
            tap=tap,
            upstream_status=response.status_code,
            native=relay_native,
            received=reader.received,
        )

    def _relay(
        self,
        response: StreamedAnswer,
        reader: EventReader,
        tap: StreamTap,
        client_wants_usage: bool,
        *,
        native: bool = False,
    ) -> AsyncGenerator[bytes, None]:
        return relay_translated(
            response,
            reader,
            AnthropicToOpenAIStream(runs_seen=tap.runs_seen),
            tap,
            client_wants_usage=client_wants_usage,
            native=native,
            failed=lambda message: (
                _event_error(message) if message.get("type") == "error" else None
            ),
            end_event="message_stop",
        )

    async def count_tokens(
        self, target: Target, body: JSON, *, client_headers: Mapping[str, str] | None = None
    ) -> int:
        """Anthropic's own count for an Anthropic Messages body (`/v1/messages/count_tokens`)."""
        response = await self.post_json(
            self._url(target) + "/count_tokens",
            self._headers(target, client_headers),
            {**body, "model": target.upstream_model},
        )
        if response.status_code >= 400:
            raise self.error_from(response.status_code, response.headers, response.content)
        tokens = read_json(response.content).get("input_tokens")
        if not isinstance(tokens, int):
            raise UpstreamError(
                "provider sent a token count without input_tokens",
                status=502,
                cause="bad_response",
            )
        return tokens

    async def embeddings(self, target: Target, payload: JSON) -> Reply:
        message = (
            f"The deployment '{target.deployment_name}' is served by an Anthropic provider, "
            "which does not offer embeddings."
        )
        raise UpstreamError(
            message,
            status=400,
            cause="client_error",
            body=openai_error(message, "invalid_request_error", "embeddings_not_supported"),
        )

    def error_from(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        """Anthropic's error answer -> `UpstreamError` with an OpenAI-format body."""
        translated = anthropic_error_to_openai(status, body)
        error = orjson.loads(translated)["error"]
        return UpstreamError(
            f"provider answered {status} ({error['code'] or error['type']}): {error['message']}",
            status=status,
            cause=cause_for_status(status),
            body=translated,
            retry_after=parse_retry_after(headers.get("retry-after")),
        )

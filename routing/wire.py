"""The client's wire format. The gateway works in OpenAI's; Anthropic clients get theirs back.

One object per request (a stream's conversion keeps state between events).
"""

from __future__ import annotations

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
from routing.core.types import JSON


class OpenAIWire:
    name = "openai"

    def body(self, openai_body: bytes, parsed: JSON) -> bytes:
        return openai_body  # byte for byte as the provider (or the adapter) produced it

    def events(self, event: bytes) -> list[bytes]:
        return [event]

    def finish(self) -> list[bytes]:
        return []

    def error_body(self, status: int, openai_error: bytes) -> bytes:
        return openai_error

    def error_event(self, openai_error: bytes) -> bytes:
        return b"data: " + openai_error + b"\n\n"


class AnthropicWire(OpenAIWire):
    name = "anthropic"

    def __init__(self) -> None:
        self._stream = OpenAIToAnthropicStream()

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

    def error_event(self, openai_error: bytes) -> bytes:
        return b"event: error\ndata: " + openai_error_to_anthropic(500, openai_error) + b"\n\n"


class ResponsesWire(OpenAIWire):
    """OpenAI's Responses API; its errors are OpenAI's, so only answers and streams change."""

    name = "responses"

    def __init__(self, context: ResponseContext) -> None:
        self.context = context
        self._stream = ChatToResponsesStream(context)

    def body(self, openai_body: bytes, parsed: JSON) -> bytes:
        return orjson.dumps(openai_response_to_responses(parsed, self.context))

    def events(self, event: bytes) -> list[bytes]:
        data = event_data(event)
        if data is None:
            return []
        if data == b"[DONE]":
            return self._stream.finish()
        return self._stream.feed(orjson.loads(data))

    def finish(self) -> list[bytes]:
        return self._stream.finish()

    def error_event(self, openai_error: bytes) -> bytes:
        return self._stream.error(openai_error)

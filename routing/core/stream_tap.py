"""Watching an OpenAI-format chunk stream go by, to know what was answered once it ends."""

from __future__ import annotations

from typing import Any

from routing.core.types import JSON, Usage

# The message key the internal form carries provider-run tool calls in (never sent anywhere):
# routing/core/translate/responses_native.py.
HOSTED_CALLS_KEY = "hosted_tool_calls"


class StreamTap:
    """Accumulates content, tool calls, finish reason and usage from `chat.completion.chunk`s."""

    def __init__(self) -> None:
        self.response_id = ""
        self.model = ""
        self.created = 0
        self.content: list[str] = []
        self.tool_calls: dict[int, JSON] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.chunks = 0
        # Provider-run tool calls (a Responses-native stream's web_search_call, ...), summarized.
        self.hosted_calls: list[JSON] = []
        # Server tools seen starting (an Anthropic stream's server_tool_use blocks), by name:
        # charged when the stream is cut before the provider's usage counts them.
        self.runs_seen: dict[str, int] = {}

    def feed(self, chunk: JSON) -> None:
        self.chunks += 1
        self.response_id = self.response_id or chunk.get("id", "")
        self.model = self.model or chunk.get("model", "")
        self.created = self.created or int(chunk.get("created") or 0)
        if chunk.get("usage"):
            self.usage = Usage.from_openai(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 is passed through; the record keeps the first choice
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                self._feed_tool_call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _feed_tool_call(self, call: JSON) -> None:
        index = int(call.get("index", 0))
        if call.get("type") == "custom" or "custom" in call:
            # A freeform tool's call: its text streams in `custom.input`, not in arguments.
            slot = self.tool_calls.setdefault(
                index, {"id": "", "type": "custom", "custom": {"name": "", "input": ""}}
            )
            custom = call.get("custom") or {}
            if call.get("id"):
                slot["id"] = call["id"]
            if custom.get("name"):
                slot["custom"]["name"] += custom["name"]
            if custom.get("input"):
                slot["custom"]["input"] += custom["input"]
            return
        slot = self.tool_calls.setdefault(
            index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if call.get("id"):
            slot["id"] = call["id"]
        function = call.get("function") or {}
        if function.get("name"):
            slot["function"]["name"] += function["name"]
        if function.get("arguments"):
            slot["function"]["arguments"] += function["arguments"]

    def assembled_tool_calls(self) -> list[JSON]:
        return [self.tool_calls[index] for index in sorted(self.tool_calls)]

    def assembled_response(self) -> JSON:
        """The stream as the equivalent non-streamed `chat.completion`, for the audit record."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.tool_calls:
            message["tool_calls"] = self.assembled_tool_calls()
        if self.hosted_calls:
            message[HOSTED_CALLS_KEY] = list(self.hosted_calls)
        usage = self.usage or Usage()
        return {
            "id": self.response_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": usage.usage_json(),
        }

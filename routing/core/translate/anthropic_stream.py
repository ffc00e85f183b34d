"""Streams, both ways: Anthropic SSE events <-> OpenAI `chat.completion.chunk`s.

Both converters are pure state machines: no I/O, one event (or chunk) in, zero or more out.

Anthropic -> OpenAI (`AnthropicToOpenAIStream`): every chunk shares the message's id, model
and `created`. message_start gives the role chunk (`{"role": "assistant", "content": ""}`);
text deltas become `delta.content`; a tool_use block opens a tool call (`index` counts tool_use
blocks from 0) and its input_json_delta pieces follow as `function.arguments`; a tool whose
input streamed nothing gets "{}" when its block stops, so the arguments always parse;
message_delta gives the finish chunk; message_stop gives the usage-only chunk
(`choices: []`) - the caller decides whether the client sees it. Pings and thinking are
dropped.

OpenAI -> Anthropic (`OpenAIToAnthropicStream`): the first chunk opens the message, content
opens a text block, each new tool-call index opens a tool_use block (a block is closed when
the next one opens); finish reason and usage are held until `finish()`, since OpenAI sends
usage after the finish chunk, and come out in message_delta, before message_stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from routing.core.translate.anthropic_common import (
    anthropic_id,
    anthropic_stop_reason,
    anthropic_usage,
    arguments_from_input,
    openai_finish_reason,
    openai_usage,
)
from routing.core.types import JSON

_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "server_tool_use",  # the server tools Anthropic ran, counted in its last usage
)


class AnthropicToOpenAIStream:
    """Feed Anthropic stream events (parsed `data:`), get OpenAI chunk dicts back."""

    def __init__(
        self, *, created: int | None = None, runs_seen: dict[str, int] | None = None
    ) -> None:
        self.id = ""
        self.model = ""
        self.created = int(time.time()) if created is None else created
        self.usage: JSON = {}  # Anthropic usage, as last reported
        self.done = False  # message_stop seen
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._tools_with_input: set[int] = set()
        # The server tools seen starting (name -> runs): what a stream cut before Anthropic's
        # usage is charged for (a StreamTap's `runs_seen`).
        self.runs_seen = {} if runs_seen is None else runs_seen
        self._usage_sent = False

    def chunk(self, delta: JSON, finish_reason: str | None = None) -> JSON:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def usage_chunk(self) -> JSON:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": openai_usage(self.usage),
        }

    def _record_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            # message_delta counts are cumulative and may include input counts: latest wins.
            self.usage.update({k: usage[k] for k in _USAGE_FIELDS if usage.get(k) is not None})

    def _tool_delta(self, block_index: int, call: JSON) -> JSON:
        return self.chunk({"tool_calls": [{"index": self._tools[block_index], **call}]})

    def feed(self, event: JSON) -> list[JSON]:
        kind = event.get("type")
        index = int(event.get("index") or 0)
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = message.get("id") or self.id
            self.model = message.get("model") or self.model
            self._record_usage(message.get("usage"))
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(index, event.get("content_block") or {})
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self.chunk({"content": delta["text"]})]
            if delta.get("type") == "input_json_delta" and index in self._tools:
                piece = delta.get("partial_json") or ""
                if not piece:
                    return []
                self._tools_with_input.add(index)
                return [self._tool_delta(index, {"function": {"arguments": piece}})]
            return []
        if kind == "content_block_stop":
            if index in self._tools and index not in self._tools_with_input:
                self._tools_with_input.add(index)
                return [self._tool_delta(index, {"function": {"arguments": "{}"}})]
            return []
        if kind == "message_delta":
            # Its usage is the last: sent now, a stream cut before message_stop is still charged
            # what Anthropic counted (its server tools' runs included).
            self._record_usage(event.get("usage"))
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            self._usage_sent = True
            return [self.chunk({}, openai_finish_reason(stop_reason)), self.usage_chunk()]
        if kind == "message_stop":
            self.done = True
            return [] if self._usage_sent else [self.usage_chunk()]
        return []  # ping, and event types added later

    def _block_start(self, index: int, block: JSON) -> list[JSON]:
        if block.get("type") == "server_tool_use" and isinstance(name := block.get("name"), str):
            self.runs_seen[name] = self.runs_seen.get(name, 0) + 1
            return []
        if block.get("type") == "text":
            return [self.chunk({"content": block["text"]})] if block.get("text") else []
        if block.get("type") != "tool_use":
            return []
        self._tools[index] = len(self._tools)
        arguments = ""
        if block.get("input"):  # always {} from Anthropic today; kept if it ever is not
            arguments = arguments_from_input(block["input"])
            self._tools_with_input.add(index)
        call = {
            "id": block.get("id", ""),
            "type": "function",
            "function": {"name": block.get("name", ""), "arguments": arguments},
        }
        return [self._tool_delta(index, call)]


def anthropic_event(data: JSON) -> bytes:
    """One Anthropic SSE event, named after its `type`."""
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class OpenAIToAnthropicStream:
    """Feed OpenAI chunk dicts, get Anthropic SSE event bytes; call `finish()` at [DONE].

    `input_tokens` says what the prompt counts when the gateway knows it (OpenAI-format
    providers report usage only at the end, Anthropic's `message_start` carries it first)."""

    def __init__(self, input_tokens: Callable[[], int] | None = None) -> None:
        self._input_tokens = input_tokens
        self.started = False
        self.finished = False
        self._open: int | None = None  # index of the open content block
        self._open_text = False
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool call index -> block index
        self._stop_reason: str | None = None
        self._usage: JSON | None = None

    def _start(self, chunk: JSON) -> list[bytes]:
        self.started = True
        usage = anthropic_usage(chunk.get("usage"))
        if not usage.get("input_tokens") and self._input_tokens is not None:
            usage["input_tokens"] = self._input_tokens()
        message = {
            "id": anthropic_id(chunk.get("id"), "msg_"),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model", ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [anthropic_event({"type": "message_start", "message": message})]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open, self._open_text = self._open, None, False
        return [anthropic_event({"type": "content_block_stop", "index": index})]

    def _open_block(self, block: JSON) -> tuple[int, list[bytes]]:
        events = self._close()
        index = self._open = self._blocks
        self._blocks += 1
        self._open_text = block["type"] == "text"
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return index, [*events, anthropic_event(start)]

    @staticmethod
    def _delta(index: int, delta: JSON) -> bytes:
        return anthropic_event({"type": "content_block_delta", "index": index, "delta": delta})

    def feed(self, chunk: JSON) -> list[bytes]:
        events = [] if self.started else self._start(chunk)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # an Anthropic message has one choice
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                events += self._text(text)
            for call in delta.get("tool_calls") or ():
                events += self._tool_call(call)
            if choice.get("finish_reason"):
                self._stop_reason = anthropic_stop_reason(choice["finish_reason"])
        return events

    def _text(self, text: str) -> list[bytes]:
        events: list[bytes] = []
        if self._open is None or not self._open_text:
            _, events = self._open_block({"type": "text", "text": ""})
        assert self._open is not None
        return [*events, self._delta(self._open, {"type": "text_delta", "text": text})]

    def _tool_call(self, call: JSON) -> list[bytes]:
        position = int(call.get("index") or 0)
        function = call.get("function") or {}
        events: list[bytes] = []
        index = self._tool_blocks.get(position)
        if index is None:
            block: JSON = {
                "type": "tool_use",
                "id": anthropic_id(call.get("id"), "toolu_"),
                "name": function.get("name") or "",
                "input": {},
            }
            index, events = self._open_block(block)
            self._tool_blocks[position] = index
        # A later piece of an already closed call (interleaved calls) keeps its own index.
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            events.append(self._delta(index, delta))
        return events

    def finish(self) -> list[bytes]:
        """Close the message: last block stop, message_delta (reason, usage), message_stop."""
        if self.finished:
            return []
        self.finished = True
        events = [] if self.started else self._start({})
        events += self._close()
        usage = anthropic_usage(self._usage)
        delta = {"stop_reason": self._stop_reason or "end_turn", "stop_sequence": None}
        events.append(anthropic_event({"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(anthropic_event({"type": "message_stop"}))
        return events

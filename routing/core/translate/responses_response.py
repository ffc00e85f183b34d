"""The internal chat answer (whole or streamed) -> OpenAI Responses API objects and events.

A Responses client gets back the request's settings echoed in the response object, as OpenAI
does, with `store` and `previous_response_id` as the gateway handled them. Ids derive from the
gateway's request id, so a response id leads straight to its audit record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from routing.core.translate.responses_tools import ToolOrigin, custom_input, search_arguments
from routing.core.types import JSON, usage_count, usage_details

_ECHOED_DEFAULTS: JSON = {
    "conversation": None,  # {"id": ...} when the turn belongs to one (routing/responses_state/)
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "reasoning": None,
    "temperature": None,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": None,
    "user": None,
}
# finish_reason -> why a response is incomplete (None: it completed).
_INCOMPLETE: dict[str, str] = {"length": "max_output_tokens", "content_filter": "content_filter"}


def responses_usage(usage: JSON | None) -> JSON:
    usage = usage if isinstance(usage, dict) else {}
    prompt = usage_count(usage.get("prompt_tokens"), "prompt_tokens")
    completion = usage_count(usage.get("completion_tokens"), "completion_tokens")
    cached = usage_count(
        usage_details(usage, "prompt_tokens_details").get("cached_tokens"), "cached_tokens"
    )
    reasoning = usage_count(
        usage_details(usage, "completion_tokens_details").get("reasoning_tokens"),
        "reasoning_tokens",
    )
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


@dataclass(frozen=True, slots=True)
class ResponseContext:
    """What the answer needs from the request: its id and the settings to echo."""

    response_id: str
    request: JSON
    created_at: int = 0
    # Chat tool name -> the client's tool it stands for (custom, namespaced, tool_search).
    tools: Mapping[str, ToolOrigin] = field(default_factory=dict)
    store: bool = False  # whether the gateway keeps this response (routing/responses_state/)
    previous_response_id: str | None = None

    def item_id(self, prefix: str, n: int) -> str:
        return f"{prefix}_{self.response_id.removeprefix('resp_')}_{n}"

    def response(
        self, *, model: str, output: list[JSON], finish_reason: str | None, usage: JSON | None
    ) -> JSON:
        incomplete = _INCOMPLETE.get(finish_reason or "")
        status = (
            "in_progress" if finish_reason is None else "incomplete" if incomplete else "completed"
        )
        body: JSON = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "model": model,
            "output": output,
            "previous_response_id": self.previous_response_id,
            "store": self.store,
            "truncation": "disabled",
            "usage": responses_usage(usage) if usage is not None else None,
        }
        for key, default in _ECHOED_DEFAULTS.items():
            value = self.request.get(key)
            body[key] = default if value is None else value
        return body


def _message_item(item_id: str, text: str, status: str) -> JSON:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": status,
        "content": content if status == "completed" else [],
    }


def _call_item(item_id: str, call: JSON, status: str, tools: Mapping[str, ToolOrigin]) -> JSON:
    """A chat tool call -> the Responses item of the tool the client offered."""
    call_id = call.get("id") or ""
    if call.get("type") == "custom" or "custom" in call:
        custom = call.get("custom") or {}
        name = custom.get("name") or ""
        item = {
            "type": "custom_tool_call",
            "id": item_id,
            "call_id": call_id,
            "name": name,
            "input": custom.get("input") or "",
            "status": status,
        }
        return _in_namespace(item, tools.get(name))
    function = call.get("function") or {}
    name = function.get("name") or ""
    arguments = function.get("arguments") or ""
    origin = tools.get(name)
    if origin is not None and origin.kind == "custom":
        # A provider without freeform tools called it with JSON arguments `{"input": ...}`.
        item = {
            "type": "custom_tool_call",
            "id": item_id,
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments) if status == "completed" else "",
            "status": status,
        }
        return _in_namespace(item, origin)
    if origin is not None and origin.kind == "tool_search":
        return {
            "type": "tool_search_call",
            "id": item_id,
            "call_id": call_id,
            "execution": "client",
            "arguments": search_arguments(arguments) if status == "completed" else {},
            "status": status,
        }
    item = {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }
    return _in_namespace(item, origin)


def _in_namespace(item: JSON, origin: ToolOrigin | None) -> JSON:
    if origin is not None and origin.namespace:
        item["namespace"] = origin.namespace
    return item


def openai_response_to_responses(chat: JSON, context: ResponseContext) -> JSON:
    """A chat completion -> a Responses API response object."""
    choice = (chat.get("choices") or [{}])[0] or {}
    message = choice.get("message") or {}
    output: list[JSON] = []
    text = message.get("content") or message.get("refusal")
    if text:
        output.append(_message_item(context.item_id("msg", 0), text, "completed"))
    for call in message.get("tool_calls") or ():
        output.append(
            _call_item(context.item_id("fc", len(output)), call, "completed", context.tools)
        )
    return context.response(
        model=str(chat.get("model") or ""),
        output=output,
        finish_reason=choice.get("finish_reason") or "stop",
        usage=chat.get("usage") or {},
    )


def responses_event(kind: str, data: JSON) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


@dataclass(slots=True)
class _Item:
    index: int
    body: JSON
    text: str = ""
    native: bool = False  # a chat `custom` call (its input streams as text, not JSON)
    streamed: bool = False  # a custom call's input went out as deltas


@dataclass(slots=True)
class ChatToResponsesStream:
    """Internal chat chunks -> Responses streaming events (created ... completed)."""

    context: ResponseContext
    started: bool = False
    finished: bool = False
    _seq: int = 0
    _model: str = ""
    _items: list[_Item] = field(default_factory=list)
    _open: _Item | None = None
    _calls: dict[int, _Item] = field(default_factory=dict)
    _finish_reason: str | None = None
    _usage: JSON | None = None
    final: JSON | None = None  # the response object of the last event, once finished

    def _event(self, kind: str, data: JSON) -> bytes:
        event = responses_event(kind, {**data, "sequence_number": self._seq})
        self._seq += 1
        return event

    def _snapshot(self, finish_reason: str | None) -> JSON:
        return self.context.response(
            model=self._model,
            output=[item.body for item in self._items],
            finish_reason=finish_reason,
            usage=self._usage if finish_reason else None,
        )

    def _start(self, chunk: JSON) -> list[bytes]:
        self.started = True
        self._model = str(chunk.get("model") or "")
        response = self._snapshot(None)
        return [
            self._event("response.created", {"response": response}),
            self._event("response.in_progress", {"response": response}),
        ]

    def _close(self) -> list[bytes]:
        item, self._open = self._open, None
        if item is None:
            return []
        where = {"item_id": item.body["id"], "output_index": item.index}
        events = []
        if item.body["type"] == "message":
            part = {"type": "output_text", "text": item.text, "annotations": [], "logprobs": []}
            item.body.update(_message_item(item.body["id"], item.text, "completed"))
            events += [
                self._event(
                    "response.output_text.done",
                    {**where, "content_index": 0, "text": item.text, "logprobs": []},
                ),
                self._event(
                    "response.content_part.done", {**where, "content_index": 0, "part": part}
                ),
            ]
        elif item.body["type"] == "function_call":
            item.body.update(arguments=item.text, status="completed")
            events.append(
                self._event(
                    "response.function_call_arguments.done", {**where, "arguments": item.text}
                )
            )
        else:
            events += self._close_call(item, where)
        events.append(
            self._event(
                "response.output_item.done", {"output_index": item.index, "item": item.body}
            )
        )
        return events

    def _add(self, body: JSON) -> tuple[_Item, list[bytes]]:
        events = self._close()
        item = _Item(len(self._items), body)
        self._items.append(item)
        self._open = item
        events.append(
            self._event(
                "response.output_item.added", {"output_index": item.index, "item": dict(body)}
            )
        )
        return item, events

    def feed(self, chunk: JSON) -> list[bytes]:
        events = [] if self.started else self._start(chunk)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # a response has one answer
            delta = choice.get("delta") or {}
            if text := delta.get("content") or delta.get("refusal"):
                events += self._text(text)
            for call in delta.get("tool_calls") or ():
                events += self._tool_call(call)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return events

    def _text(self, text: str) -> list[bytes]:
        events: list[bytes] = []
        item = self._open
        if item is None or item.body["type"] != "message":
            item_id = self.context.item_id("msg", len(self._items))
            item, events = self._add(_message_item(item_id, "", "in_progress"))
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            where = {"item_id": item_id, "output_index": item.index, "content_index": 0}
            events.append(self._event("response.content_part.added", {**where, "part": part}))
        item.text += text
        where = {"item_id": item.body["id"], "output_index": item.index, "content_index": 0}
        events.append(
            self._event("response.output_text.delta", {**where, "delta": text, "logprobs": []})
        )
        return events

    def _close_call(self, item: _Item, where: JSON) -> list[bytes]:
        """A custom or tool_search call is complete: its final form from the whole text."""
        call = item.body
        if call["type"] == "custom_tool_call":
            text = item.text if item.native else custom_input(item.text)
            call.update(input=text, status="completed")
            if not item.streamed and text:
                item.streamed = True
                return [
                    self._event("response.custom_tool_call_input.delta", {**where, "delta": text}),
                    self._event("response.custom_tool_call_input.done", {**where, "input": text}),
                ]
            return [self._event("response.custom_tool_call_input.done", {**where, "input": text})]
        call.update(arguments=search_arguments(item.text), status="completed")
        return []

    def _tool_call(self, call: JSON) -> list[bytes]:
        position = int(call.get("index") or 0)
        events: list[bytes] = []
        item = self._calls.get(position)
        native = call.get("type") == "custom" or "custom" in call
        if item is None:
            item_id = self.context.item_id("fc", len(self._items))
            opened = {**call, "function": {**(call.get("function") or {}), "arguments": ""}}
            if native:
                opened["custom"] = {**(call.get("custom") or {}), "input": ""}
            item, events = self._add(_call_item(item_id, opened, "in_progress", self.context.tools))
            item.native = native
            self._calls[position] = item
        piece = (
            (call.get("custom") or {}).get("input")
            if native
            else (call.get("function") or {}).get("arguments")
        ) or ""
        if not piece:
            return events
        item.text += piece
        where = {"item_id": item.body["id"], "output_index": item.index}
        kind = item.body["type"]
        if kind == "function_call":
            if item is not self._open:  # a late piece of an already closed call
                item.body["arguments"] = item.text
            events.append(
                self._event("response.function_call_arguments.delta", {**where, "delta": piece})
            )
        elif kind == "custom_tool_call" and item.native:
            item.streamed = True
            events.append(
                self._event("response.custom_tool_call_input.delta", {**where, "delta": piece})
            )
        # Wrapped freeform input and tool_search arguments are JSON until complete: sent on close.
        return events

    def finish(self) -> list[bytes]:
        """Close the last item and the response: completed, or incomplete (length, filter)."""
        if self.finished:
            return []
        self.finished = True
        events = [] if self.started else self._start({})
        events += self._close()
        reason = self._finish_reason or "stop"
        final = self._snapshot(reason)
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        self.final = final
        events.append(self._event(kind, {"response": final}))
        return events

    def restate_final(self, **changes: Any) -> bytes:
        """The last event again (same sequence number), its response changed: a stream whose
        response could not be stored says so there."""
        assert self.final is not None
        self.final = {**self.final, **changes}
        kind = (
            "response.incomplete" if self.final["status"] == "incomplete" else "response.completed"
        )
        data = {"response": self.final, "sequence_number": self._seq - 1}
        return responses_event(kind, data)

    def error(self, openai_error: bytes, *, after: int | None = None) -> bytes:
        """A stream that broke off: the Responses `error` event (`after`: the last sequence
        number of events this translator did not number, a native provider's)."""
        if after is not None:
            self._seq = max(self._seq, after + 1)
        error = _error_fields(openai_error)
        return self._event(
            "error",
            {
                "code": error.get("code"),
                "message": error.get("message") or "",
                "param": error.get("param"),
            },
        )


def _error_fields(openai_error: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(openai_error)
    except orjson.JSONDecodeError:
        return {"message": openai_error.decode(errors="replace")}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {"message": str(parsed)}

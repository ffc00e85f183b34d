"""Anthropic Messages wire format: request parsing and response/stream/error bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from mock_provider.behaviour import (
    BadRequest,
    Prompt,
    Reply,
    ToolSpec,
    pick_tool,
    split_arguments,
    word_pieces,
)
from mock_provider.structured import requested_schema

# Status -> error type, as Anthropic labels them.
_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> bytes:
    default = "api_error" if status >= 500 else "invalid_request_error"
    kind = _ERRORS.get(status, default)
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


def _block_text(block: Any) -> str:
    if (
        isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    ):
        return str(block["text"])
    return ""


def _blocks_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for t in map(_block_text, content) if t)
    return ""


def _tools(body: dict[str, Any]) -> list[ToolSpec]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    # Server tools (web_search_..., with a `type`) are run by Anthropic, never by the client.
    return [
        ToolSpec(tool["name"], tool.get("input_schema") or {})
        for tool in tools
        if isinstance(tool, dict)
        and isinstance(tool.get("name"), str)
        and tool.get("type") in (None, "custom")
    ]


def _server_tools(body: dict[str, Any]) -> list[str]:
    """The server tools offered (`{"type": "web_search_20250305", "name": "web_search"}`): like
    Anthropic, the mock runs each once before it answers, and counts the runs in its usage."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [
        tool["name"]
        for tool in tools
        if isinstance(tool, dict)
        and isinstance(tool.get("name"), str)
        and tool.get("type") not in (None, "custom")
    ]


def parse_messages(body: dict[str, Any], *, counting_only: bool = False) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: must be a non-empty list")
    if not isinstance(body.get("model"), str):
        raise BadRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if not counting_only and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise BadRequest("max_tokens: Field required")
    texts = [_blocks_text(body.get("system"))]
    last_user = ""
    last_results: list[str] | None = None
    for message in messages:
        if not isinstance(message, dict):
            raise BadRequest("messages: each message must be an object")
        content = message.get("content")
        text = _blocks_text(content)
        texts.append(text)
        results: list[str] = []
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    results.append(_blocks_text(block.get("content")))
        texts.extend(results)
        # A user turn holding only tool results is not "what the user said".
        if message.get("role") == "user" and text:
            last_user = text
        last_results = results if message.get("role") == "user" and results else None
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    forced = choice.get("name") if isinstance(choice, dict) and kind == "tool" else None
    tools = _tools(body)
    return Prompt(
        texts=texts,
        last_user_text=last_user,
        tool_result_text=" ".join(last_results) if last_results is not None else None,
        tool=pick_tool(tools, forced, kind != "none"),
        offered=tuple(tools) if kind != "none" else (),
        forced=forced is not None,
        json_schema=requested_schema(body),
        max_tokens=None if counting_only else max_tokens,
        hosted_tools=tuple(_server_tools(body)) if kind != "none" else (),
    )


def _stop_reason(reply: Reply) -> str:
    if reply.tool_name is not None:
        return "tool_use"
    return "max_tokens" if reply.truncated else "end_turn"


def _usage(reply: Reply, server_tools: Sequence[str] = ()) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": reply.prompt_tokens,
        "output_tokens": reply.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    if server_tools:
        usage["server_tool_use"] = {f"{name}_requests": 1 for name in server_tools}
    return usage


def _server_blocks(name: str, query: str, message_id: str) -> tuple[dict[str, Any], ...]:
    """A server tool's use and its result, as Anthropic puts them in the answer's content."""
    use_id = f"srvtoolu_{message_id[4:]}_{name}"
    use = {"type": "server_tool_use", "id": use_id, "name": name, "input": {"query": query}}
    found = {"type": "web_search_result", "url": "https://example.com/mock", "title": query[:40]}
    result = {"type": f"{name}_tool_result", "tool_use_id": use_id, "content": [found]}
    return use, result


def message_body(
    reply: Reply, model: str, message_id: str, tool_id: str, prompt: Prompt | None = None
) -> bytes:
    block: dict[str, Any]
    if reply.tool_name is not None:
        block = {
            "type": "tool_use",
            "id": tool_id,
            "name": reply.tool_name,
            "input": reply.tool_input,
        }
    else:
        block = {"type": "text", "text": reply.text}
    server = prompt.hosted_tools if prompt else ()
    query = prompt.last_user_text if prompt else ""
    ran = [b for name in server for b in _server_blocks(name, query, message_id)]
    return orjson.dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [*ran, block],
            "stop_reason": _stop_reason(reply),
            "stop_sequence": None,
            "usage": _usage(reply, server),
        }
    )


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def message_stream(
    reply: Reply, model: str, message_id: str, tool_id: str, prompt: Prompt | None = None
) -> list[bytes]:
    """Every SSE event of the stream, message_stop included, in order."""
    server = prompt.hosted_tools if prompt else ()
    query = prompt.last_user_text if prompt else ""
    start_usage = _usage(reply)
    start_usage["output_tokens"] = 1  # Anthropic reports a placeholder 1 until message_delta
    events = [
        _event(
            b"message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        )
    ]
    deltas: list[dict[str, Any]]
    if reply.tool_name is not None:
        assert reply.arguments is not None
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": tool_id,
            "name": reply.tool_name,
            "input": {},
        }
        # Anthropic opens every tool input with an empty partial_json.
        pieces = ["", *split_arguments(reply.arguments)]
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in word_pieces(reply.text or "")]
    index = 0
    for name in server:  # each server tool's use (its input streamed), then its result
        use, result = _server_blocks(name, query, message_id)
        arguments = orjson.dumps(use["input"]).decode()
        events += [
            _start(index, {**use, "input": {}}),
            _delta(index, {"type": "input_json_delta", "partial_json": arguments}),
            _stop(index),
            _start(index + 1, result),
            _stop(index + 1),
        ]
        index += 2
    events.append(_start(index, block))
    events.append(_event(b"ping", {"type": "ping"}))
    events += [_delta(index, d) for d in deltas]
    events.append(_stop(index))
    events.append(
        _event(
            b"message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                "usage": {
                    "output_tokens": reply.completion_tokens,
                    **(
                        {"server_tool_use": _usage(reply, server)["server_tool_use"]}
                        if server
                        else {}
                    ),
                },
            },
        )
    )
    events.append(_event(b"message_stop", {"type": "message_stop"}))
    return events


def count_tokens_body(prompt: Prompt) -> bytes:
    return orjson.dumps({"input_tokens": prompt.prompt_tokens()})


def _start(index: int, block: dict[str, Any]) -> bytes:
    event = {"type": "content_block_start", "index": index, "content_block": block}
    return _event(b"content_block_start", event)


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    event = {"type": "content_block_delta", "index": index, "delta": delta}
    return _event(b"content_block_delta", event)


def _stop(index: int) -> bytes:
    return _event(b"content_block_stop", {"type": "content_block_stop", "index": index})

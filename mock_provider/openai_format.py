"""OpenAI wire format: request parsing and response/stream/error bodies."""

from __future__ import annotations

import array
import base64
import hashlib
import math
import sys
import time
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

# Status -> (error type, error code), as OpenAI labels them.
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "unknown_url"),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}
_TOOL_RESULT_ROLES = frozenset({"tool", "function"})
_MAX_DIMENSIONS = 8192


def error_body(status: int, message: str) -> bytes:
    default = ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    kind, code = _ERRORS.get(status, default)
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


def models_body(models: tuple[str, ...], created: int) -> bytes:
    data = [{"id": m, "object": "model", "created": created, "owned_by": "mock"} for m in models]
    return orjson.dumps({"object": "list", "data": data})


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _tools(body: dict[str, Any]) -> list[ToolSpec]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    specs = []
    for tool in tools:
        custom = tool.get("custom") if isinstance(tool, dict) else None
        if tool.get("type") == "custom" and isinstance(custom, dict) and custom.get("name"):
            specs.append(ToolSpec(str(custom["name"]), {}, freeform=True))
            continue
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            specs.append(ToolSpec(fn["name"], params if isinstance(params, dict) else {}))
    return specs


def parse_chat(body: dict[str, Any]) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array")
    if not isinstance(body.get("model"), str):
        raise BadRequest("'model' must be a string")
    texts: list[str] = []
    last_user = ""
    for message in messages:
        if not isinstance(message, dict):
            raise BadRequest("each message must be an object")
        text = _text(message.get("content"))
        texts.append(text)
        if message.get("role") == "user" and text:
            last_user = text
    last = messages[-1]
    tool_result = texts[-1] if last.get("role") in _TOOL_RESULT_ROLES else None
    choice = body.get("tool_choice")
    forced = None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        forced = choice["function"].get("name")
    elif isinstance(choice, dict) and isinstance(choice.get("custom"), dict):
        forced = choice["custom"].get("name")
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise BadRequest("'max_tokens' must be an integer")
    tools = _tools(body)
    return Prompt(
        texts=texts,
        last_user_text=last_user,
        tool_result_text=tool_result,
        tool=pick_tool(tools, forced, choice != "none"),
        offered=tuple(tools) if choice != "none" else (),
        forced=forced is not None,
        json_schema=requested_schema(body),
        max_tokens=max_tokens,
    )


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _finish_reason(reply: Reply) -> str:
    if reply.tool_name is not None:
        return "tool_calls"
    return "length" if reply.truncated else "stop"


def chat_completion(reply: Reply, model: str, completion_id: str, call_id: str) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_name is not None and reply.freeform:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "custom",
                "custom": {"name": reply.tool_name, "input": reply.arguments},
            }
        ]
    elif reply.tool_name is not None:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": reply.tool_name, "arguments": reply.arguments},
            }
        ]
    message["annotations"] = []
    return orjson.dumps(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish_reason(reply),
                }
            ],
            "usage": _usage(reply),
            "service_tier": "default",
            "system_fingerprint": None,
        }
    )


def chat_stream(
    reply: Reply, model: str, completion_id: str, call_id: str, include_usage: bool
) -> list[bytes]:
    """Every SSE event of the stream, `data: [DONE]` included, in order."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            # OpenAI sends an explicit null on every chunk but the usage one.
            body["usage"] = None
        return b"data: " + orjson.dumps(body) + b"\n\n"

    if reply.tool_name is not None and reply.freeform:
        assert reply.arguments is not None
        opened = {
            "index": 0,
            "id": call_id,
            "type": "custom",
            "custom": {"name": reply.tool_name, "input": ""},
        }
        events = [
            chunk({"role": "assistant", "content": None, "tool_calls": [opened], "refusal": None})
        ]
        events += [
            chunk({"tool_calls": [{"index": 0, "custom": {"input": piece}}]})
            for piece in split_arguments(reply.arguments)
        ]
    elif reply.tool_name is not None:
        assert reply.arguments is not None
        first_call = {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": reply.tool_name, "arguments": ""},
        }
        events = [
            chunk(
                {"role": "assistant", "content": None, "tool_calls": [first_call], "refusal": None}
            )
        ]
        events += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in split_arguments(reply.arguments)
        ]
    else:
        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": piece}) for piece in word_pieces(reply.text or "")]
    # Like OpenAI, the finish_reason travels on its own chunk with an empty delta.
    events.append(chunk({}, _finish_reason(reply)))
    if include_usage:
        usage_chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [],
            "usage": _usage(reply),
        }
        events.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def embedding_vector(text: str, dimensions: int) -> array.array[float]:
    """Unit-length float32 vector drawn from shake_256(text)."""
    raw = hashlib.shake_256(text.encode("utf-8")).digest(dimensions * 2)
    values = [
        int.from_bytes(raw[i : i + 2], "little") / 32767.5 - 1.0 for i in range(0, len(raw), 2)
    ]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return array.array("f", [v / norm for v in values])


def _base64_le(vector: array.array[float]) -> str:
    # The wire format is little-endian float32 whatever the host is.
    if sys.byteorder == "big":
        vector = array.array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode("ascii")


def embedding_inputs(body: dict[str, Any]) -> tuple[list[str], int]:
    """The texts to embed (token arrays become their decimal spelling) and their tokens."""
    raw = body.get("input")
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        items = [raw]  # a single token array
    elif isinstance(raw, list) and raw:
        items = raw
    else:
        raise BadRequest("'input' must be a string, an array of strings or token arrays")
    texts: list[str] = []
    tokens = 0
    for item in items:
        if isinstance(item, str):
            texts.append(item)
            tokens += len(item.split())
        elif isinstance(item, list) and all(isinstance(x, int) for x in item):
            texts.append(" ".join(map(str, item)))
            tokens += len(item)
        else:
            raise BadRequest("'input' items must be strings or token arrays")
    return texts, tokens


def embeddings_body(body: dict[str, Any], default_dimensions: int) -> bytes:
    texts, tokens = embedding_inputs(body)
    dims = body.get("dimensions", default_dimensions)
    if isinstance(dims, bool) or not isinstance(dims, int) or not 0 < dims <= _MAX_DIMENSIONS:
        raise BadRequest("'dimensions' must be an integer between 1 and 8192")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'")
    data = []
    for index, text in enumerate(texts):
        vector = embedding_vector(text, dims)
        value: Any = _base64_le(vector) if encoding == "base64" else vector.tolist()
        data.append({"object": "embedding", "index": index, "embedding": value})
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )

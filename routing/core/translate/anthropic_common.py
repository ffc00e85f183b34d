"""What both directions of the OpenAI <-> Anthropic translation share.

Stop reasons, tool-call arguments, usage, data URLs, tool ids and error bodies: each mapping is
written once here, next to its inverse, so a round trip goes through the same two functions.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from routing.core.types import JSON, SERVER_TOOL_USE, tool_runs, usage_count

# OpenAI `function.arguments` is a free string; Anthropic `tool_use.input` must be an object.
# Arguments that are not a JSON object (a truncated generation, say) are kept verbatim under
# this key, and unwrapped again on the way back, so no text is ever lost.
RAW_ARGUMENTS_KEY = "_raw_arguments"

_FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def openai_finish_reason(stop_reason: Any) -> str:
    """Anthropic `stop_reason` -> OpenAI `finish_reason` (unknown reasons read as "stop")."""
    return _FINISH_REASONS.get(str(stop_reason), "stop")


def anthropic_stop_reason(finish_reason: Any) -> str:
    """OpenAI `finish_reason` -> Anthropic `stop_reason` (unknown reasons read as end_turn)."""
    return _STOP_REASONS.get(str(finish_reason), "end_turn")


def input_from_arguments(arguments: Any) -> JSON:
    """OpenAI tool-call arguments (a JSON string) -> an Anthropic `input` object."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    text = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {RAW_ARGUMENTS_KEY: text}
    return value if isinstance(value, dict) else {RAW_ARGUMENTS_KEY: text}


def arguments_from_input(value: Any) -> str:
    """Anthropic `input` -> OpenAI arguments: compact JSON, or the unwrapped raw string."""
    if isinstance(value, dict) and len(value) == 1:
        raw = value.get(RAW_ARGUMENTS_KEY)
        if isinstance(raw, str):
            return raw
    return orjson.dumps(value if value is not None else {}).decode()


_TOOL_ID_FORBIDDEN = re.compile(r"[^a-zA-Z0-9_-]")


def anthropic_tool_id(value: Any) -> str:
    """Anthropic ids must match ^[a-zA-Z0-9_-]+$; other characters become "_" (deterministic,
    so a tool_use and its tool_result still agree)."""
    return _TOOL_ID_FORBIDDEN.sub("_", str(value or ""))


def _tokens(usage: JSON, name: str) -> int:
    return usage_count(usage.get(name), name)


def openai_usage(usage: JSON | None) -> JSON:
    """Anthropic usage -> OpenAI usage: prompt tokens include the cache reads and writes."""
    usage = usage if isinstance(usage, dict) else {}
    fresh = _tokens(usage, "input_tokens")
    read = _tokens(usage, "cache_read_input_tokens")
    written = _tokens(usage, "cache_creation_input_tokens")
    output = _tokens(usage, "output_tokens")
    prompt = fresh + read + written
    result: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read},
    }
    if written:
        # Not an OpenAI field (OpenAI bills no cache writes); kept so the reverse is exact.
        result["cache_creation_input_tokens"] = written
    if tool_runs(usage.get(SERVER_TOOL_USE)):
        # The server tools Anthropic ran (web search…): charged per run, kept for the reverse.
        result[SERVER_TOOL_USE] = dict(usage[SERVER_TOOL_USE])
    return result


def anthropic_usage(usage: JSON | None) -> JSON:
    """OpenAI usage -> Anthropic usage (the inverse of `openai_usage`)."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details") or {}
    read = _tokens(details, "cached_tokens")
    written = _tokens(usage, "cache_creation_input_tokens")
    result: JSON = {
        "input_tokens": max(0, _tokens(usage, "prompt_tokens") - read - written),
        "output_tokens": _tokens(usage, "completion_tokens"),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
    }
    if tool_runs(usage.get(SERVER_TOOL_USE)):
        result[SERVER_TOOL_USE] = dict(usage[SERVER_TOOL_USE])
    return result


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:<media type>[;base64],<data>` -> (media type, base64 data); None if not one."""
    if not url.startswith("data:") or "," not in url:
        return None
    header, data = url[5:].split(",", 1)
    params = header.split(";")
    media_type = params[0] or "text/plain"
    if "base64" in params[1:]:
        return media_type, data
    return media_type, base64.b64encode(unquote_to_bytes(data)).decode()


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


# Anthropic error type -> OpenAI error type. The Anthropic type itself becomes the `code`,
# so the provider's own label stays visible to the client.
_OPENAI_ERROR_TYPES: dict[str, str] = {
    "invalid_request_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "billing_error": "insufficient_quota",
    "rate_limit_error": "rate_limit_exceeded",
    "api_error": "server_error",
    "overloaded_error": "server_error",
    "timeout_error": "server_error",
}
# Status -> Anthropic error type, for the reverse direction (OpenAI's types vary by provider).
_ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
    503: "overloaded_error",
}


def _error_parts(body: bytes) -> tuple[str, str] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return None
    return str(error.get("type") or ""), str(error.get("message") or "")


def _plain_message(status: int, body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()[:1000]
    return text or f"provider answered {status}"


def openai_error(message: str, error_type: str, code: str | None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    )


def anthropic_error_to_openai(status: int, body: bytes) -> bytes:
    """`{"type":"error","error":{"type","message"}}` -> OpenAI's `{"error":{...}}` body."""
    fallback = "server_error" if status >= 500 else "invalid_request_error"
    parts = _error_parts(body)
    if parts is None:
        return openai_error(_plain_message(status, body), fallback, None)
    kind, message = parts
    return openai_error(message, _OPENAI_ERROR_TYPES.get(kind, fallback), kind or None)


def anthropic_error(message: str, error_type: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})


def openai_error_to_anthropic(status: int, body: bytes) -> bytes:
    """OpenAI's `{"error":{...}}` body -> Anthropic's, typed by status."""
    default = "api_error" if status >= 500 else "invalid_request_error"
    kind = _ANTHROPIC_ERROR_TYPES.get(status, default)
    parts = _error_parts(body)
    message = parts[1] if parts is not None else _plain_message(status, body)
    return anthropic_error(message, kind)


def anthropic_id(value: Any, prefix: str) -> str:
    """An id in Anthropic's own form (`msg_…`, `toolu_…`) for an answer translated from another
    format: the provider's id behind the prefix, so it still leads to the provider's logs. A
    tool id sent back in a `tool_result` reaches the provider in the same form on both sides."""
    text = str(value or "")
    return text if text.startswith(prefix) else prefix + text

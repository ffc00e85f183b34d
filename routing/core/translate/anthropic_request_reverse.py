"""Anthropic Messages request -> OpenAI chat-completions request.

For serving Anthropic's `POST /v1/messages` from OpenAI-format providers. Choices:
- `system` becomes one leading system message (a string, or text parts when it was blocks).
- a user turn's `tool_result` blocks become `tool` messages, in order, before a user message
  holding the turn's other blocks; images inside a tool result move to that user message
  (OpenAI tool messages carry text only). `is_error` has no OpenAI equivalent and is dropped.
- assistant text blocks are joined into `content` (None when the turn only calls tools);
  `thinking` / `redacted_thinking` blocks and server tools are dropped.
- arguments are compact JSON of `input` (`RAW_ARGUMENTS_KEY` is unwrapped).
- `thinking` and `output_config.effort` become `reasoning_effort`; `output_config.format` (a JSON
  schema) becomes `response_format`. What has no OpenAI form (`top_k`, `context_management`,
  top-level `cache_control`, server tools, ...) is named by `untranslatable_fields`, so the
  pipeline can say so (header and audit record) rather than drop it silently.
- a stream asks for usage (`stream_options.include_usage`).
"""

from __future__ import annotations

from typing import Any

from routing.core.translate.anthropic_common import arguments_from_input, data_url
from routing.core.types import JSON


def anthropic_request_to_openai(body: JSON) -> JSON:
    """Translate an Anthropic Messages body into an OpenAI chat-completions body."""
    messages: list[JSON] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _collapse(_parts(system))})
    for message in body.get("messages") or ():
        content = message.get("content")
        if message.get("role") == "assistant":
            messages.append(_assistant_message(content))
        else:
            messages.extend(_user_messages(content))

    result: JSON = {"model": body.get("model"), "messages": messages}
    if body.get("max_tokens") is not None:
        result["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            result[name] = body[name]
    if body.get("stop_sequences"):
        result["stop"] = list(body["stop_sequences"])
    user_id = (body.get("metadata") or {}).get("user_id")
    if user_id:
        result["user"] = user_id
    _add_tools(result, body)
    if effort := _reasoning_effort(body):
        result["reasoning_effort"] = effort
    output_format = (body.get("output_config") or {}).get("format") or {}
    if output_format.get("type") == "json_schema" and isinstance(output_format.get("schema"), dict):
        result["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output_format["schema"]},
        }
    if body.get("stream"):
        result["stream"] = True
        result["stream_options"] = {"include_usage": True}
    return result


# Fields the translation carries (or maps); anything else at the top level has no OpenAI form.
_CARRIED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "stop_sequences",
        "metadata",
        "tools",
        "tool_choice",
        "stream",
        "thinking",
        "output_config",
    }
)
_EFFORTS = ("low", "medium", "high")


def _reasoning_effort(body: JSON) -> str | None:
    """`output_config.effort`, else `thinking`: adaptive -> medium, a budget -> its size."""
    effort = (body.get("output_config") or {}).get("effort")
    if effort in _EFFORTS:
        return str(effort)
    if effort == "max":
        return "high"
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "adaptive":
        return "medium"
    if thinking.get("type") == "enabled":
        budget = int(thinking.get("budget_tokens") or 0)
        return "low" if budget < 4096 else "medium" if budget < 16384 else "high"
    return None


# Mapped to OpenAI fields that the way back to Anthropic's format does not carry.
_MAPPED_ONE_WAY = ("thinking", "output_config")


def untranslatable_fields(body: JSON, *, round_trip: bool = False) -> list[str]:
    """What a deployment cannot receive from this Messages body through the internal form, by
    name: an OpenAI-format one, or (`round_trip`) an Anthropic-format one the body could not go
    to natively."""
    lost = _CARRIED.difference(_MAPPED_ONE_WAY) if round_trip else _CARRIED
    dropped = sorted(key for key in body if key not in lost)
    if round_trip:
        return dropped + [
            f"tools[{i}] ({tool.get('type')})"
            for i, tool in enumerate(body.get("tools") or ())
            if isinstance(tool, dict) and tool.get("type") not in (None, "custom")
        ]
    for i, tool in enumerate(body.get("tools") or ()):
        if isinstance(tool, dict) and tool.get("type") not in (None, "custom"):
            dropped.append(f"tools[{i}] ({tool.get('type')})")
    output_config = body.get("output_config") or {}
    dropped += [f"output_config.{key}" for key in output_config if key not in ("effort", "format")]
    fmt = output_config.get("format")
    if fmt and (not isinstance(fmt, dict) or fmt.get("type") != "json_schema"):
        dropped.append("output_config.format")
    return dropped


def _blocks(content: Any) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or () if isinstance(block, dict)]


def _with_cache_control(part: JSON, block: JSON) -> JSON:
    if block.get("cache_control"):
        part["cache_control"] = block["cache_control"]
    return part


def _part(block: JSON) -> JSON | None:
    kind = block.get("type")
    if kind == "text":
        return _with_cache_control({"type": "text", "text": block.get("text", "")}, block)
    source = block.get("source") or {}
    if kind == "image":
        if source.get("type") == "base64":
            url = data_url(source.get("media_type", ""), source.get("data", ""))
        else:
            url = source.get("url", "")
        return _with_cache_control({"type": "image_url", "image_url": {"url": url}}, block)
    if kind == "document" and source.get("type") == "base64":
        file: JSON = {"file_data": data_url(source.get("media_type", ""), source.get("data", ""))}
        if block.get("title"):
            file["filename"] = block["title"]
        return {"type": "file", "file": file}
    return None


def _parts(content: Any) -> list[JSON]:
    return [part for part in map(_part, _blocks(content)) if part is not None]


def _collapse(parts: list[JSON]) -> str | list[JSON]:
    """Text-only parts become a plain string, the form most OpenAI providers handle best."""
    if all(part["type"] == "text" and "cache_control" not in part for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def _user_messages(content: Any) -> list[JSON]:
    messages: list[JSON] = []
    parts: list[JSON] = []
    for block in _blocks(content):
        if block.get("type") != "tool_result":
            part = _part(block)
            if part is not None:
                parts.append(part)
            continue
        result = block.get("content")
        result_parts = _parts(result)
        texts = [part for part in result_parts if part["type"] == "text"]
        parts.extend(part for part in result_parts if part["type"] != "text")
        tool_content: str | list[JSON]
        if isinstance(result, str):
            tool_content = result
        else:
            tool_content = [{"type": "text", "text": part["text"]} for part in texts]
            if len(tool_content) <= 1:
                tool_content = tool_content[0]["text"] if tool_content else ""
        messages.append(
            {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": tool_content}
        )
    if parts:
        single = len(parts) == 1 and parts[0]["type"] == "text" and len(parts[0]) == 2
        messages.append({"role": "user", "content": parts[0]["text"] if single else parts})
    return messages


def _assistant_message(content: Any) -> JSON:
    texts: list[str] = []
    calls: list[JSON] = []
    for block in _blocks(content):
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": arguments_from_input(block.get("input")),
                    },
                }
            )
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _add_tools(result: JSON, body: JSON) -> None:
    tools = []
    for tool in body.get("tools") or ():
        if tool.get("type") not in (None, "custom"):
            continue  # server tools (web search, code execution…) run at Anthropic only
        function: JSON = {"name": tool.get("name", "")}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
        tools.append({"type": "function", "function": function})
    if not tools:
        return
    result["tools"] = tools
    choice = body.get("tool_choice") or {}
    kind = choice.get("type")
    if kind == "auto":
        result["tool_choice"] = "auto"
    elif kind == "any":
        result["tool_choice"] = "required"
    elif kind == "none":
        result["tool_choice"] = "none"
    elif kind == "tool":
        result["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    if choice.get("disable_parallel_tool_use"):
        result["parallel_tool_calls"] = False

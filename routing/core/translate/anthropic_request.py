"""OpenAI chat-completions request -> Anthropic Messages request.

Choices (see also `DROPPED_FIELDS`):
- system and developer messages, wherever they stand, become the top-level `system`: one
  string, every message (and every text part) joined with "\\n\\n"; a list of text blocks
  instead when a part carries `cache_control`, which is copied onto its block.
- consecutive turns of one role are merged (Anthropic wants user/assistant alternation);
  `tool` messages become `tool_result` blocks of a user turn, moved before that turn's other
  blocks as Anthropic requires. Empty text is dropped (Anthropic rejects empty text blocks),
  and so is a message left with no block at all.
- tool-call arguments that are not a JSON object are kept under `RAW_ARGUMENTS_KEY`.
- tool ids keep their value; characters Anthropic forbids in ids become "_".
- `temperature` is clamped to Anthropic's 0..1 (OpenAI allows up to 2): common values (0, 0.7,
  1) keep their meaning, and a request is never refused for it.
- `max_completion_tokens`, else `max_tokens`, else `DEFAULT_MAX_TOKENS` (Anthropic requires it).
- `user` (or `safety_identifier`) becomes `metadata.user_id`; `top_k`, not OpenAI's but sent
  by some clients, is passed through.
- `response_format` with a JSON schema becomes `output_config.format` (Anthropic's structured
  outputs), so the SDKs' `.parse()` helpers get JSON of their type from an Anthropic deployment.
"""

from __future__ import annotations

from typing import Any

from routing.core.translate.anthropic_common import (
    anthropic_tool_id,
    input_from_arguments,
    parse_data_url,
)
from routing.core.translate.responses_tools import CUSTOM_INPUT_KEY
from routing.core.types import JSON

DEFAULT_MAX_TOKENS = 4096

# Accepted from OpenAI clients but with no Anthropic equivalent: not sent. `n` > 1 yields one
# choice; `response_format` other than a JSON schema (`json_object`) is not enforced; legacy
# `functions`/`function_call` are ignored.
DROPPED_FIELDS = frozenset(
    {
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "response_format",
        "seed",
        "service_tier",
        "store",
        "metadata",
        "modalities",
        "audio",
        "prediction",
        "reasoning_effort",
        "verbosity",
        "web_search_options",
        "prompt_cache_key",
        "functions",
        "function_call",
        "stream_options",  # the adapter decides how it streams
    }
)


def openai_request_to_anthropic(payload: JSON) -> JSON:
    """Translate an OpenAI chat-completions body into an Anthropic Messages body."""
    system: list[JSON] = []
    turns: list[JSON] = []
    for message in payload.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_content_blocks(message.get("content")))
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message)]
        elif role == "assistant":
            blocks = _assistant_blocks(message)
        elif role == "user":
            blocks = _content_blocks(message.get("content"))
        else:
            continue  # the legacy "function" role: no id to pair it with a tool_use
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # sorted() is stable: results first, everything else in its order.
        turn["content"].sort(key=lambda block: block.get("type") != "tool_result")

    body: JSON = {"model": payload.get("model"), "messages": turns}
    max_tokens = payload.get("max_completion_tokens") or payload.get("max_tokens")
    body["max_tokens"] = int(max_tokens) if max_tokens else DEFAULT_MAX_TOKENS
    if system:
        if any("cache_control" in block for block in system):
            body["system"] = system
        else:
            body["system"] = "\n\n".join(block.get("text", "") for block in system)
    if payload.get("temperature") is not None:
        body["temperature"] = min(max(float(payload["temperature"]), 0.0), 1.0)
    for name in ("top_p", "top_k"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    stop = payload.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    user = payload.get("user") or payload.get("safety_identifier")
    if user:
        body["metadata"] = {"user_id": str(user)}
    _add_tools(body, payload)
    if (schema := _json_schema(payload.get("response_format"))) is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if payload.get("stream"):
        body["stream"] = True
    return body


def _json_schema(response_format: Any) -> JSON | None:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema if isinstance(schema, dict) else None


def _with_cache_control(block: JSON, part: JSON) -> JSON:
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _content_blocks(content: Any) -> list[JSON]:
    """OpenAI message content (a string or a list of parts) -> Anthropic content blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSON] = []
    for part in content or ():
        if isinstance(part, str):
            part = {"type": "text", "text": part}
        block = _part_block(part)
        if block is not None:
            blocks.append(_with_cache_control(block, part))
    return blocks


def _part_block(part: JSON) -> JSON | None:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        text = part.get(kind)
        return {"type": "text", "text": text} if text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        url = url if isinstance(url, str) else ""  # not a URL: no image (a crash was a 500)
        parsed = parse_data_url(url)
        if parsed is not None:
            media_type, data = parsed
            source = {"type": "base64", "media_type": media_type, "data": data}
            return {"type": "image", "source": source}
        return {"type": "image", "source": {"type": "url", "url": url}} if url else None
    if kind == "file":
        file = part.get("file") or {}
        parsed = parse_data_url(str(file.get("file_data") or ""))
        if parsed is None:
            return None  # an uploaded `file_id` means nothing to Anthropic
        media_type, data = parsed
        block: JSON = {
            "type": "document",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
        if file.get("filename"):
            block["title"] = file["filename"]
        return block
    return None  # input_audio and unknown parts: Anthropic has no equivalent


def _assistant_blocks(message: JSON) -> list[JSON]:
    blocks = _content_blocks(message.get("content"))
    if message.get("refusal") and not blocks:
        blocks.append({"type": "text", "text": message["refusal"]})
    for call in message.get("tool_calls") or ():
        if call.get("type") == "custom":
            custom = call.get("custom") or {}
            blocks.append(
                {
                    "type": "tool_use",
                    "id": anthropic_tool_id(call.get("id")),
                    "name": custom.get("name") or "",
                    "input": {CUSTOM_INPUT_KEY: custom.get("input") or ""},
                }
            )
            continue
        if call.get("type", "function") != "function":
            continue
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": anthropic_tool_id(call.get("id")),
                "name": function.get("name") or "",
                "input": input_from_arguments(function.get("arguments")),
            }
        )
    return blocks


def _tool_result(message: JSON) -> JSON:
    content = message.get("content")
    block: JSON = {
        "type": "tool_result",
        "tool_use_id": anthropic_tool_id(message.get("tool_call_id")),
    }
    if isinstance(content, str):
        block["content"] = content
    elif content:
        block["content"] = _content_blocks(content)
    else:
        block["content"] = ""
    return block


def _add_tools(body: JSON, payload: JSON) -> None:
    tools = [
        _custom_tool(tool) if tool.get("type") == "custom" else _tool(tool)
        for tool in payload.get("tools") or ()
        if (tool.get("type", "function") == "function" and isinstance(tool.get("function"), dict))
        or (tool.get("type") == "custom" and isinstance(tool.get("custom"), dict))
    ]
    if not tools:
        return
    body["tools"] = tools
    choice = _tool_choice(payload.get("tool_choice"))
    if payload.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        body["tool_choice"] = choice


def _tool(tool: JSON) -> JSON:
    function: JSON = tool["function"]
    result: JSON = {"name": function.get("name") or ""}
    if function.get("description"):
        result["description"] = function["description"]
    result["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    # `strict` has no Anthropic equivalent; `cache_control` may sit on either level.
    return _with_cache_control(_with_cache_control(result, function), tool)


def _custom_tool(tool: JSON) -> JSON:
    """A freeform tool: Anthropic has none, so its text travels as one string parameter, and the
    grammar (if any) goes to the model as part of the description."""
    custom: JSON = tool["custom"]
    description = str(custom.get("description") or "")
    fmt = custom.get("format") or {}
    if fmt.get("type") == "grammar" and fmt.get("definition"):
        description += (
            f"\n\nThe '{CUSTOM_INPUT_KEY}' text must follow this {fmt.get('syntax', '')} "
            f"grammar:\n{fmt['definition']}"
        )
    schema = {
        "type": "object",
        "properties": {CUSTOM_INPUT_KEY: {"type": "string"}},
        "required": [CUSTOM_INPUT_KEY],
    }
    result: JSON = {"name": custom.get("name") or "", "input_schema": schema}
    if description:
        result["description"] = description.strip()
    return result


def _tool_choice(choice: Any) -> JSON | None:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict):
        function = choice.get("function") or choice.get("custom") or {}
        if function.get("name"):
            return {"type": "tool", "name": function["name"]}
    return None

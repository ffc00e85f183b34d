"""Non-streamed answers, both ways: Anthropic `message` <-> OpenAI `chat.completion`.

Choices:
- ids keep the provider's id: an OpenAI answer translated from Anthropic has id "msg_…" and
  tool-call ids "toolu_…" as logged; an Anthropic answer translated from OpenAI gets the
  client's own prefixes in front of the provider's ids ("msg_chatcmpl-…", "toolu_call_…").
- text blocks are joined into `message.content`; with tool calls and no text it is None.
  `thinking` and server-tool blocks have no OpenAI equivalent and are dropped.
- stop reasons: see `anthropic_common` (stop_sequence and pause_turn read as "stop").
- usage: see `openai_usage` / `anthropic_usage`.
"""

from __future__ import annotations

import time
from typing import Any

from routing.core.translate.anthropic_common import (
    anthropic_id,
    anthropic_stop_reason,
    anthropic_usage,
    arguments_from_input,
    input_from_arguments,
    openai_finish_reason,
    openai_usage,
)
from routing.core.types import JSON


def anthropic_response_to_openai(body: JSON, *, created: int | None = None) -> JSON:
    """Translate an Anthropic `message` into an OpenAI `chat.completion`."""
    texts: list[str] = []
    calls: list[JSON] = []
    for block in body.get("content") or ():
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
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
    text = "".join(texts)
    message: JSON = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": body.get("id", ""),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": openai_finish_reason(body.get("stop_reason")),
            }
        ],
        "usage": openai_usage(body.get("usage")),
    }


def openai_message_text(content: Any) -> str:
    """OpenAI message content (string, parts or None) -> its text."""
    if isinstance(content, str):
        return content
    return "".join(
        str(part.get("text") or "")
        for part in content or ()
        if isinstance(part, dict) and part.get("type") == "text"
    )


def openai_response_to_anthropic(body: JSON) -> JSON:
    """Translate an OpenAI `chat.completion` (its first choice) into an Anthropic `message`."""
    choices = body.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[JSON] = []
    text = openai_message_text(message.get("content")) or message.get("refusal") or ""
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": anthropic_id(call.get("id"), "toolu_"),
                "name": function.get("name", ""),
                "input": input_from_arguments(function.get("arguments")),
            }
        )
    return {
        "id": anthropic_id(body.get("id"), "msg_"),
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": content,
        "stop_reason": anthropic_stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(body.get("usage")),
    }

"""Property-based round trips: what is meaningful survives OpenAI -> Anthropic -> OpenAI,
and Anthropic -> OpenAI -> Anthropic."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings

from routing.core.translate import (
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
    openai_response_to_anthropic,
)
from tests.routing.core.translate.roundtrip_support import (
    anthropic_messages,
    conversations,
    message_meaning,
)


def meaning(body: dict[str, Any]) -> dict[str, Any]:
    """What must survive: system text, turns (merged by role), texts, calls, results, settings."""
    system: list[str] = []
    turns: list[tuple[str, list[Any]]] = []
    for message in body["messages"]:
        role, content = message["role"], message.get("content")
        texts = [content] if isinstance(content, str) else [p["text"] for p in content or ()]
        if role in ("system", "developer"):
            system += texts
            continue
        if role == "tool":
            items: list[Any] = [("result", message["tool_call_id"], "".join(texts))]
        else:
            items = [("text", t) for t in texts if t]
        items += [
            ("call", c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls") or ()
        ]
        group = "assistant" if role == "assistant" else "user"
        if turns and turns[-1][0] == group:
            turns[-1][1].extend(items)
        else:
            turns.append((group, items))
    normalized = []
    for group, items in turns:
        texts = [i[1] for i in items if i[0] == "text"]
        others = [i for i in items if i[0] != "text"]
        # An assistant's texts read as one string; a user's results come before its texts.
        normalized.append((group, others, ["".join(texts)] if group == "assistant" else texts))
    return {
        "system": "\n\n".join(system),
        "turns": normalized,
        "settings": {
            k: body.get(k) for k in ("model", "max_tokens", "temperature", "stop", "user")
        },
        "tools": body.get("tools"),
        "tool_choice": body.get("tool_choice"),
        "parallel_tool_calls": body.get("parallel_tool_calls"),
    }


@settings(max_examples=200, deadline=None)
@given(conversations())
def test_an_openai_request_survives_the_trip_through_anthropic(body):
    assert meaning(anthropic_request_to_openai(openai_request_to_anthropic(body))) == meaning(body)


@settings(max_examples=200, deadline=None)
@given(anthropic_messages())
def test_an_anthropic_message_survives_the_trip_through_openai(message):
    back = openai_response_to_anthropic(anthropic_response_to_openai(message))
    assert message_meaning(back) == message_meaning(message)

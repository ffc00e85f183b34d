"""Hypothesis strategies for the round-trip properties, and what "the same meaning" is."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)
NAMES = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,15}", fullmatch=True)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
ARGUMENTS = st.dictionaries(TEXT, JSON_VALUES, max_size=4)
SCHEMAS = st.builds(
    lambda props: {"type": "object", "properties": {p: {"type": t} for p, t in props.items()}},
    st.dictionaries(NAMES, st.sampled_from(["string", "integer", "boolean", "number"]), max_size=3),
)


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    ids = iter(
        draw(
            st.lists(
                st.from_regex(r"[a-zA-Z0-9_-]{1,20}", fullmatch=True),
                min_size=40,
                max_size=40,
                unique=True,
            )
        )
    )
    tools = draw(
        st.lists(
            st.builds(lambda n, d, s: (n, d, s), NAMES, st.none() | TEXT, SCHEMAS),
            max_size=3,
            unique_by=lambda t: t[0],
        )
    )
    messages: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        messages.append(
            {"role": draw(st.sampled_from(["system", "developer"])), "content": draw(TEXT)}
        )
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        messages.append({"role": "user", "content": draw(TEXT)})
        if tools and draw(st.booleans()):
            calls = [
                {
                    "id": "call_" + next(ids),
                    "type": "function",
                    "function": {
                        "name": draw(st.sampled_from(tools))[0],
                        "arguments": json.dumps(draw(ARGUMENTS)),
                    },
                }
                for _ in range(draw(st.integers(min_value=1, max_value=3)))
            ]
            messages.append(
                {"role": "assistant", "content": draw(st.none() | TEXT), "tool_calls": calls}
            )
            messages += [
                {"role": "tool", "tool_call_id": c["id"], "content": draw(TEXT)} for c in calls
            ]
        messages.append({"role": "assistant", "content": draw(TEXT)})
    body: dict[str, Any] = {"model": draw(NAMES), "messages": messages}
    body["max_tokens"] = draw(st.integers(min_value=1, max_value=100_000))
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(min_value=0, max_value=1))
    if draw(st.booleans()):
        body["stop"] = draw(st.lists(TEXT, min_size=1, max_size=3))
    if draw(st.booleans()):
        body["user"] = draw(NAMES)
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": n, "parameters": s} | ({"description": d} if d else {}),
            }
            for n, d, s in tools
        ]
        body["tool_choice"] = draw(
            st.sampled_from(
                ["auto", "required", {"type": "function", "function": {"name": tools[0][0]}}]
            )
        )
        if draw(st.booleans()):
            body["parallel_tool_calls"] = False
    return body


@st.composite
def anthropic_messages(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(
        st.lists(st.from_regex(r"toolu_[a-zA-Z0-9]{8,24}", fullmatch=True), max_size=3, unique=True)
    )
    tool_uses = [
        {"type": "tool_use", "id": i, "name": draw(NAMES), "input": draw(ARGUMENTS)} for i in ids
    ]
    texts = [{"type": "text", "text": t} for t in draw(st.lists(TEXT, max_size=3))]
    usage = {
        name: draw(st.integers(min_value=0, max_value=10**6))
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        )
    }
    return {
        "id": draw(st.from_regex(r"msg_[a-zA-Z0-9]{10,24}", fullmatch=True)),
        "type": "message",
        "role": "assistant",
        "model": draw(NAMES),
        "content": texts + tool_uses,
        "stop_reason": "tool_use"
        if tool_uses
        else draw(st.sampled_from(["end_turn", "max_tokens", "refusal"])),
        "stop_sequence": None,
        "usage": usage,
    }


def message_meaning(message: dict[str, Any]) -> tuple[Any, ...]:
    blocks = message["content"]
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    calls = [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
    usage = {k: message["usage"].get(k) or 0 for k in message["usage"] if k.endswith("_tokens")}
    return message["id"], message["model"], text, calls, message["stop_reason"], usage

"""Codex's default request shape: its tools come in the input (`additional_tools`), its code-mode
`exec` is a freeform tool inside a namespace, and a `configuration_update` item changes the
reasoning effort mid-input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from routing.core.sse import event_data
from routing.core.translate import (
    ChatToResponsesStream,
    ResponseContext,
    UnsupportedRequest,
    openai_response_to_responses,
    responses_request_to_openai,
)

EXEC = {
    "type": "custom",
    "name": "exec",
    "description": "Run JavaScript code to orchestrate tool calls.",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /[\\s\\S]+/"},
}
WAIT = {
    "type": "function",
    "name": "wait",
    "strict": False,
    "parameters": {"type": "object", "properties": {"cell_id": {"type": "string"}}},
}
SLEEP = {"type": "function", "name": "sleep", "parameters": {"type": "object"}}


def codex_body(*extra_tools: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "gpt-6.2-sol",
        "stream": True,
        "input": [
            {
                "type": "additional_tools",
                "id": "at_1",
                "role": "developer",
                "tools": [
                    {"type": "namespace", "name": "functions", "tools": [EXEC, WAIT]},
                    {"type": "namespace", "name": "clock", "tools": [SLEEP]},
                    *extra_tools,
                ],
            },
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are Codex."}],
                "internal_chat_message_metadata_passthrough": {"turn_id": "t1"},
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What does notes.txt say?"}],
            },
            {"type": "configuration_update", "reasoning": {"effort": "low"}},
        ],
        "tool_choice": "auto",
        "reasoning": {"effort": "high", "context": "all_turns"},
        "store": False,
    }


def test_the_tools_of_an_additional_tools_item_are_offered_to_the_model():
    chat, tools = responses_request_to_openai(codex_body())

    assert chat["tools"][0] == {
        "type": "custom",
        "custom": {k: EXEC[k] for k in ("name", "description", "format")},
    }
    assert [t["function"]["name"] for t in chat["tools"][1:]] == ["wait", "sleep"]
    assert (tools.origins["exec"].kind, tools.origins["exec"].namespace) == ("custom", "functions")
    assert tools.origins["sleep"].namespace == "clock"
    # The item itself is no message; Codex's own per-message metadata stays with Codex.
    assert chat["messages"] == [
        {"role": "developer", "content": "You are Codex."},
        {"role": "user", "content": "What does notes.txt say?"},
    ]
    assert chat["reasoning_effort"] == "low"  # the configuration update wins


def test_a_hosted_tool_in_the_input_follows_the_routes_policy():
    web = {"type": "web_search"}
    with pytest.raises(UnsupportedRequest) as refused:
        responses_request_to_openai(codex_body(web))
    assert refused.value.param == "input[0].tools[2].type"
    assert "web_search" in refused.value.message

    chat, tools = responses_request_to_openai(codex_body(web), hosted_tools="drop")
    assert tools.dropped == ["web_search"]
    assert len(chat["tools"]) == 3


def test_a_namespace_still_refuses_what_is_neither_function_nor_custom():
    body = codex_body()
    body["input"][0]["tools"][0]["tools"].append({"type": "file_search"})
    with pytest.raises(UnsupportedRequest) as refused:
        responses_request_to_openai(body)
    assert refused.value.param == "input[0].tools[0].tools[2].type"


def _context(body: dict[str, Any]) -> ResponseContext:
    _, tools = responses_request_to_openai(body)
    return ResponseContext("resp_x", body, 1, tools=tools.origins)


CODE = "const r = await tools.exec_command({cmd: 'cat notes.txt'});\ntext(r.output);"


def test_a_call_of_the_namespaced_freeform_tool_comes_back_in_its_namespace():
    call = {"id": "call_1", "type": "custom", "custom": {"name": "exec", "input": CODE}}
    chat = {
        "model": "m",
        "choices": [{"message": {"tool_calls": [call]}, "finish_reason": "tool_calls"}],
    }
    (item,) = openai_response_to_responses(chat, _context(codex_body()))["output"]
    assert item["type"] == "custom_tool_call"
    assert (item["name"], item["namespace"], item["input"]) == ("exec", "functions", CODE)


def test_a_streamed_call_of_the_namespaced_freeform_tool_keeps_its_namespace():
    stream = ChatToResponsesStream(_context(codex_body()))
    head = {"index": 0, "id": "call_1", "type": "custom", "custom": {"name": "exec", "input": ""}}
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [head]}}]},
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "custom": {"input": CODE}}]}}
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    events = [e for chunk in chunks for e in stream.feed(chunk)] + stream.finish()
    parsed = [orjson.loads(event_data(e.rstrip(b"\n")) or b"{}") for e in events]

    added = next(e for e in parsed if e["type"] == "response.output_item.added")
    assert added["item"]["namespace"] == "functions"
    (item,) = parsed[-1]["response"]["output"]
    assert (item["type"], item["namespace"], item["input"]) == (
        "custom_tool_call",
        "functions",
        CODE,
    )

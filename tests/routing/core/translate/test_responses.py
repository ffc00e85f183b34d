"""OpenAI Responses API <-> the internal chat form: fixtures, refusals, and properties both ways."""

from __future__ import annotations

import itertools
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import omit
from openai._models import construct_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from routing.core.sse import event_data
from routing.core.translate import (
    ChatToResponsesStream,
    ResponseContext,
    UnsupportedRequest,
    openai_request_to_responses,
    openai_response_to_responses,
    responses_request_to_openai,
)
from tests.routing.core.translate.roundtrip_support import NAMES, TEXT, conversations
from tests.routing.core.translate.test_anthropic_stream import sse_data

CONTEXT = ResponseContext("resp_abc", {"instructions": "Be brief.", "store": True}, 1)


def test_a_request_with_instructions_items_and_tools_becomes_a_chat_request():
    chat, _ = responses_request_to_openai(
        {
            "model": "demo",
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "c2", "output": "rain"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
            "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "w"},
            "max_output_tokens": 50,
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}},
            "reasoning": {"effort": "low"},
            "store": True,
            "stream": True,
        }
    )
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "w", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
    ]
    assert chat["tools"] == [
        {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "w"}}
    assert chat["max_completion_tokens"] == 50
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {}},
    }
    assert chat["reasoning_effort"] == "low"
    assert chat["stream_options"] == {"include_usage": True}
    assert "store" not in chat and "input" not in chat


def test_images_become_image_url_parts():
    chat, _ = responses_request_to_openai(
        {
            "model": "m",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AA=="},
                    ],
                }
            ],
        }
    )
    assert chat["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
    ]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "stateless_gateway"),
        ({"conversation": "conv_1"}, "conversation", "stateless_gateway"),
        ({"background": True}, "background", "stateless_gateway"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].id", "stateless_gateway"),
        ({"tools": [{"type": "file_search"}]}, "tools[0].type", "unsupported_parameter"),
        ({"input": [{"type": "computer_call"}]}, "input[0].type", "unsupported_parameter"),
    ],
)
def test_what_needs_state_or_hosted_tools_is_refused_by_name(body, param, code):
    with pytest.raises(UnsupportedRequest) as refused:
        responses_request_to_openai({"model": "m", "input": "hi", **body})
    assert (refused.value.param, refused.value.code) == (param, code)


def test_a_chat_completion_becomes_a_response_with_settings_echoed():
    response = openai_response_to_responses(
        {
            "model": "gpt-x",
            "choices": [
                {
                    "message": {
                        "content": "Let me look.",
                        "tool_calls": [
                            {"id": "call_1", "function": {"name": "w", "arguments": '{"a":1}'}}
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 4,
                "prompt_tokens_details": {"cached_tokens": 6},
            },
        },
        CONTEXT,
    )
    assert response["status"] == "completed" and response["store"] is False
    assert response["instructions"] == "Be brief."
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["output"][0]["content"][0]["text"] == "Let me look."
    assert response["output"][1]["call_id"] == "call_1"
    assert response["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 6},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 14,
    }


def test_a_truncated_answer_is_an_incomplete_response():
    chat = {"model": "m", "choices": [{"message": {"content": "Half"}, "finish_reason": "length"}]}
    response = openai_response_to_responses(chat, CONTEXT)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def translate_stream(chunks: list[bytes]) -> list[dict[str, Any]]:
    stream = ChatToResponsesStream(CONTEXT)
    events: list[bytes] = []
    for data in chunks:
        events += stream.finish() if data == b"[DONE]" else stream.feed(orjson.loads(data))
    parsed = []
    for event in events:
        data = event_data(event.rstrip(b"\n"))
        assert data is not None
        parsed.append(orjson.loads(data))
    return parsed


def test_the_recorded_stream_is_accumulated_by_the_openai_sdk():
    events = translate_stream(sse_data("openai_text_and_tool_calls.sse"))
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=event))  # type: ignore[arg-type]
    final = events[-1]["response"]
    assert events[-1]["type"] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [(i["type"], i["status"]) for i in final["output"]] == [
        ("message", "completed"),
        ("function_call", "completed"),
        ("function_call", "completed"),
    ]
    assert final["output"][0]["content"][0]["text"] == "Checking both cities."
    assert [json.loads(i["arguments"]) for i in final["output"][1:]] == [
        {"location": "Paris"},
        {"location": "Tokyo"},
    ]
    assert final["usage"]["input_tokens_details"]["cached_tokens"] == 256
    snapshot = state._completed_response  # type: ignore[attr-defined]
    assert snapshot is not None and snapshot.output_text == "Checking both cities."


def test_a_stream_with_no_chunks_still_opens_and_completes():
    events = translate_stream([b"[DONE]"])
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.completed",
    ]


# -- properties ---------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(conversations())
def test_a_chat_request_survives_responses_and_back(chat):
    again, _ = responses_request_to_openai(openai_request_to_responses(chat))
    assert again["messages"] == chat["messages"]
    assert again.get("tools") == chat.get("tools")
    assert again.get("tool_choice") == chat.get("tool_choice")
    for key in ("temperature", "user", "parallel_tool_calls"):
        assert again.get(key) == chat.get(key)


@st.composite
def completions(draw: st.DrawFn) -> dict[str, Any]:
    calls = [
        {
            "id": f"call_{n}",
            "type": "function",
            "function": {"name": draw(NAMES), "arguments": json.dumps({"k": draw(TEXT)})},
        }
        for n in range(draw(st.integers(min_value=0, max_value=3)))
    ]
    text = draw(st.none() | TEXT)
    finish = "tool_calls" if calls else draw(st.sampled_from(["stop", "length"]))
    usage = {"prompt_tokens": draw(st.integers(0, 10**6)), "completion_tokens": 3}
    message = {"role": "assistant", "content": text} | ({"tool_calls": calls} if calls else {})
    return {"model": draw(NAMES), "choices": [{"message": message, "finish_reason": finish}]} | {
        "usage": usage
    }


def _pieces(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=4)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if text[a:b]]


@st.composite
def streamed(draw: st.DrawFn) -> tuple[dict[str, Any], list[bytes]]:
    """A completion, and the same completion as chat chunks cut at random places."""
    chat = draw(completions())
    message = chat["choices"][0]["message"]
    chunks: list[dict[str, Any]] = []
    for piece in _pieces(draw, message["content"] or ""):
        chunks.append({"choices": [{"index": 0, "delta": {"content": piece}}]})
    for n, call in enumerate(message.get("tool_calls") or ()):
        head = {"index": n, "id": call["id"], "function": {"name": call["function"]["name"]}}
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [head]}}]})
        for piece in _pieces(draw, call["function"]["arguments"]):
            part = {"index": n, "function": {"arguments": piece}}
            chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [part]}}]})
    finish = chat["choices"][0]["finish_reason"]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({"choices": [], "usage": chat["usage"]})
    raw = [orjson.dumps({"model": chat["model"], **c}) for c in chunks]
    return chat, [*raw, b"[DONE]"]


@settings(max_examples=150, deadline=None)
@given(streamed())
def test_a_streamed_answer_ends_as_the_same_response_as_a_whole_one(case):
    chat, chunks = case
    events = translate_stream(chunks)
    whole = openai_response_to_responses(chat, CONTEXT)
    assert events[-1]["response"] == whole
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == (chat["choices"][0]["message"]["content"] or "")
    added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
    done = [e["item"]["id"] for e in events if e["type"] == "response.output_item.done"]
    assert added == done == [item["id"] for item in whole["output"]]

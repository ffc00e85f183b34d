"""OpenAI chat-completions request -> Anthropic Messages request: tools and settings."""

from __future__ import annotations

from typing import Any

import pytest

from routing.core.translate import (
    DEFAULT_MAX_TOKENS,
    DROPPED_FIELDS,
    openai_request_to_anthropic,
)


def translate(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return openai_request_to_anthropic({"model": "claude-x", "messages": messages, **fields})


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def test_tools_become_name_description_input_schema():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = translate(
        [{"role": "user", "content": "Hi"}],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": schema,
                    "strict": True,
                },
            },
            {"type": "function", "function": {"name": "ping"}},
        ],
    )
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather", "input_schema": schema},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "ping"}}, {"type": "tool", "name": "ping"}),
    ],
)
def test_tool_choice_is_mapped(choice, expected):
    tools = [{"type": "function", "function": {"name": "ping"}}]
    body = translate([{"role": "user", "content": "Hi"}], tools=tools, tool_choice=choice)
    assert body["tool_choice"] == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", {"type": "any", "disable_parallel_tool_use": True}),
        ("none", {"type": "none"}),
    ],
)
def test_parallel_tool_calls_false_disables_parallel_tool_use(choice, expected):
    tools = [{"type": "function", "function": {"name": "ping"}}]
    fields: dict[str, Any] = {"tools": tools, "parallel_tool_calls": False}
    if choice is not None:
        fields["tool_choice"] = choice
    assert translate([{"role": "user", "content": "Hi"}], **fields)["tool_choice"] == expected


def test_tool_choice_without_tools_is_not_sent():
    assert "tool_choice" not in translate([{"role": "user", "content": "Hi"}], tool_choice="auto")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, DEFAULT_MAX_TOKENS),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200}, 200),
        ({"max_tokens": 100, "max_completion_tokens": 200}, 200),
    ],
)
def test_max_tokens_comes_from_max_completion_tokens_then_max_tokens_then_a_default(
    fields, expected
):
    assert translate([{"role": "user", "content": "Hi"}], **fields)["max_tokens"] == expected


@pytest.mark.parametrize(("given", "sent"), [(0, 0.0), (0.7, 0.7), (1, 1.0), (1.6, 1.0), (2, 1.0)])
def test_temperature_is_clamped_to_anthropics_range(given, sent):
    assert translate([{"role": "user", "content": "Hi"}], temperature=given)["temperature"] == sent


def test_top_p_and_top_k_pass_through():
    body = translate([{"role": "user", "content": "Hi"}], top_p=0.9, top_k=40)
    assert (body["top_p"], body["top_k"]) == (0.9, 40)


@pytest.mark.parametrize(("stop", "expected"), [("END", ["END"]), (["a", "b"], ["a", "b"])])
def test_stop_becomes_stop_sequences(stop, expected):
    assert translate([{"role": "user", "content": "Hi"}], stop=stop)["stop_sequences"] == expected


def test_user_becomes_metadata_user_id():
    body = translate([{"role": "user", "content": "Hi"}], user="user-42")
    assert body["metadata"] == {"user_id": "user-42"}


def test_fields_anthropic_does_not_accept_are_dropped():
    fields = {
        "n": 2,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.5,
        "logprobs": True,
        "top_logprobs": 3,
        "logit_bias": {"50256": -100},
        "response_format": {"type": "json_object"},
        "seed": 7,
        "stream_options": {"include_usage": True},
        "metadata": {"trace": "x"},
    }
    assert set(fields) <= DROPPED_FIELDS
    body = translate([{"role": "user", "content": "Hi"}], **fields)
    assert set(body) == {"model", "messages", "max_tokens"}


def test_stream_true_is_kept():
    assert translate([{"role": "user", "content": "Hi"}], stream=True)["stream"] is True

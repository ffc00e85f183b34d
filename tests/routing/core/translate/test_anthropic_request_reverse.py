"""Anthropic Messages request -> OpenAI chat-completions request, rule by rule."""

from __future__ import annotations

from typing import Any

import pytest

from routing.core.translate import RAW_ARGUMENTS_KEY, anthropic_request_to_openai


def translate(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    body = {"model": "claude-x", "max_tokens": 512, "messages": messages, **fields}
    return anthropic_request_to_openai(body)


def test_a_plain_conversation_keeps_roles_text_and_max_tokens():
    result = translate(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
        ]
    )
    assert result == {
        "model": "claude-x",
        "max_tokens": 512,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
        ],
    }


def test_system_string_becomes_a_leading_system_message():
    result = translate([{"role": "user", "content": "Hi"}], system="Be brief.")
    assert result["messages"][0] == {"role": "system", "content": "Be brief."}


def test_system_blocks_with_cache_control_become_text_parts():
    block = {"type": "text", "text": "Manual", "cache_control": {"type": "ephemeral"}}
    result = translate([{"role": "user", "content": "Hi"}], system=[block])
    assert result["messages"][0] == {"role": "system", "content": [block]}


def test_plain_system_blocks_are_joined_into_a_string():
    blocks = [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]
    result = translate([{"role": "user", "content": "Hi"}], system=blocks)
    assert result["messages"][0] == {"role": "system", "content": "One.\n\nTwo."}


def test_images_become_image_url_parts():
    result = translate(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAA="},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                ],
            }
        ]
    )
    assert result["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA="}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
    ]


def test_assistant_tool_use_becomes_tool_calls_with_compact_json_arguments():
    result = translate(
        [
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris", "days": 2},
                    },
                ],
            }
        ]
    )
    assert result["messages"][0] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris","days":2}'},
            }
        ],
    }


def test_wrapped_raw_arguments_are_unwrapped():
    block = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "f",
        "input": {RAW_ARGUMENTS_KEY: '{"a": '},
    }
    result = translate([{"role": "assistant", "content": [block]}])
    assert result["messages"][0]["tool_calls"][0]["function"]["arguments"] == '{"a": '


def test_tool_results_become_tool_messages_before_the_rest_of_the_user_turn():
    result = translate(
        [
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": [{"type": "text", "text": "12:00"}],
                        "is_error": True,
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            }
        ]
    )
    assert result["messages"] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "12:00"},
        {"role": "user", "content": "Thanks"},
    ]


def test_images_inside_a_tool_result_move_to_a_user_message():
    image = {"type": "image", "source": {"type": "url", "url": "https://x.test/chart.png"}}
    result = translate(
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "chart:"}, image],
                    }
                ],
            }
        ]
    )
    assert result["messages"] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "chart:"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x.test/chart.png"}}],
        },
    ]


def test_client_tools_become_functions_and_server_tools_are_dropped():
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    result = translate(
        [{"role": "user", "content": "Hi"}],
        tools=[
            {"name": "search", "description": "Search", "input_schema": schema},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        ],
    )
    assert result["tools"] == [
        {
            "type": "function",
            "function": {"name": "search", "description": "Search", "parameters": schema},
        }
    ]


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        ({"type": "none"}, "none", None),
        (
            {"type": "tool", "name": "search"},
            {"type": "function", "function": {"name": "search"}},
            None,
        ),
    ],
)
def test_tool_choice_is_mapped_back(choice, expected, parallel):
    tools = [{"name": "search", "input_schema": {"type": "object"}}]
    result = translate([{"role": "user", "content": "Hi"}], tools=tools, tool_choice=choice)
    assert result["tool_choice"] == expected
    assert result.get("parallel_tool_calls") == parallel


def test_sampling_stop_user_and_stream_are_mapped():
    result = translate(
        [{"role": "user", "content": "Hi"}],
        temperature=0.3,
        top_p=0.8,
        top_k=5,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        stream=True,
    )
    assert result["temperature"] == 0.3
    assert result["top_p"] == 0.8
    assert "top_k" not in result
    assert result["stop"] == ["END"]
    assert result["user"] == "u-1"
    assert result["stream"] is True
    assert result["stream_options"] == {"include_usage": True}

"""The Anthropic Messages wire format, through the official anthropic SDK and raw HTTP."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import orjson

WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
CLOCK_TOOL: Any = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.split("\n\n")[:-1]:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = orjson.loads(data_line[len("data: ") :])
        assert data["type"] == event_line[len("event: ") :]
        out.append((data["type"], data))
    return out


def test_it_answers_with_a_message_object(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="mock-claude",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello claude"}],
    )
    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", "mock-claude")
    assert len(message.content) == 1
    block = message.content[0]
    assert block.type == "text" and block.text == "Mock reply to: hello claude"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens == 2 + 2
    assert message.usage.output_tokens == 5
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0


def test_system_blocks_and_content_blocks_are_read(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="mock-claude",
        max_tokens=100,
        system=[{"type": "text", "text": "You are a careful assistant."}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                    },
                    {"type": "text", "text": "this picture"},
                ],
            }
        ],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Mock reply to: describe this picture"
    assert message.usage.input_tokens == 5 + 3


def test_max_tokens_stops_with_max_tokens(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="mock-claude", max_tokens=3, messages=[{"role": "user", "content": "a b c"}]
    )
    assert message.content[0].type == "text" and message.content[0].text == "Mock reply to:"
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 3


def test_the_stream_helper_builds_the_final_message(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="mock-claude", max_tokens=100, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert texts == ["Mock", " reply", " to:", " stream", " me"]
    assert final.content[0].type == "text" and final.content[0].text == "Mock reply to: stream me"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 5)


def test_a_stream_sends_the_anthropic_event_sequence(http: httpx.Client) -> None:
    body = {
        "model": "mock-claude",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    response = http.post("/v1/messages", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] == 1
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "Mock"}
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"] == {"output_tokens": 4}


def test_it_answers_a_tool_offer_with_tool_use(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="mock-claude",
        max_tokens=100,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        messages=[{"role": "user", "content": "weather in Paris?"}],
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_") and len(block.id) == len("toolu_") + 16
    assert (block.name, block.input) == ("get_weather", {"city": "mock"})
    assert message.usage.output_tokens == -(-len('{"city": "mock"}') // 4)


def test_tool_choice_names_the_tool_or_disables_tools(claude: anthropic.Anthropic) -> None:
    named = claude.messages.create(
        model="mock-claude",
        max_tokens=100,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice={"type": "tool", "name": "get_time"},
        messages=[{"role": "user", "content": "time?"}],
    )
    assert named.content[0].type == "tool_use" and named.content[0].name == "get_time"
    assert named.content[0].input == {}
    none = claude.messages.create(
        model="mock-claude",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "none"},
        messages=[{"role": "user", "content": "time?"}],
    )
    assert none.content[0].type == "text" and none.stop_reason == "end_turn"


def test_a_streamed_tool_use_is_reassembled_by_the_sdk(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="mock-claude",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "weather in Paris?"}],
    ) as stream:
        partials = [
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        final = stream.get_final_message()
    assert partials[0] == "" and len(partials) in (3, 4)
    assert "".join(partials) == json.dumps({"city": "mock"}, separators=(", ", ": "))
    block = final.content[0]
    assert block.type == "tool_use" and block.input == {"city": "mock"}
    assert final.stop_reason == "tool_use"


def test_a_tool_result_turn_gets_a_text_reply(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="mock-claude",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "sunny, 21 degrees"}],
                    }
                ],
            },
        ],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Tool result received: sunny, 21 degrees"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 3 + 3


def test_count_tokens_counts_words(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(
        model="mock-claude",
        system="one two",
        messages=[
            {"role": "user", "content": "three four five"},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "six"}],
            },
        ],
    )
    assert counted.input_tokens == 6


def test_a_missing_max_tokens_is_a_400_in_the_anthropic_format(http: httpx.Client) -> None:
    response = http.post(
        "/v1/messages", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"

"""Stream translation against recorded transcripts, both ways, and the SDKs that read them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from routing.core.sse import event_data
from routing.core.stream_tap import StreamTap
from routing.core.translate import AnthropicToOpenAIStream, OpenAIToAnthropicStream

FIXTURES = Path(__file__).parent / "fixtures"
CREATED = 1749117841


def sse_data(name: str) -> list[bytes]:
    events = (FIXTURES / name).read_bytes().split(b"\n\n")
    return [data for event in events if event.strip() and (data := event_data(event)) is not None]


def anthropic_to_openai(name: str) -> list[dict[str, Any]]:
    stream = AnthropicToOpenAIStream(created=CREATED)
    chunks: list[dict[str, Any]] = []
    for data in sse_data(name):
        chunks += stream.feed(orjson.loads(data))
    assert stream.done
    return chunks


def openai_to_anthropic(name: str) -> bytes:
    stream = OpenAIToAnthropicStream()
    events: list[bytes] = []
    for data in sse_data(name):
        events += stream.finish() if data == b"[DONE]" else stream.feed(orjson.loads(data))
    return b"".join(events)


def test_the_recorded_anthropic_stream_gives_exactly_the_recorded_openai_chunks():
    expected = [
        orjson.loads(line)
        for line in (FIXTURES / "anthropic_text_and_tool_use.expected_openai.jsonl")
        .read_bytes()
        .splitlines()
    ]
    assert anthropic_to_openai("anthropic_text_and_tool_use.sse") == expected


def test_the_recorded_openai_stream_gives_exactly_the_recorded_anthropic_events():
    expected = (FIXTURES / "openai_text_and_tool_calls.expected_anthropic.sse").read_bytes()
    assert openai_to_anthropic("openai_text_and_tool_calls.sse") == expected


def test_every_chunk_shares_one_id_created_and_model():
    chunks = anthropic_to_openai("anthropic_text_and_tool_use.sse")
    assert {(c["id"], c["created"], c["model"]) for c in chunks} == {
        ("msg_014p7gG3wDgGV9EUtLvnow3U", CREATED, "claude-sonnet-4-5-20250929")
    }


def test_the_tap_reassembles_the_translated_stream():
    tap = StreamTap()
    for chunk in anthropic_to_openai("anthropic_text_and_tool_use.sse"):
        tap.feed(chunk)
    response = tap.assembled_response()
    message = response["choices"][0]["message"]
    assert message["content"] == "Okay, let me check the weather in San Francisco."
    calls = message["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert orjson.loads(calls[0]["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
    }
    assert orjson.loads(calls[1]["function"]["arguments"]) == {}
    assert response["choices"][0]["finish_reason"] == "tool_calls"
    assert response["usage"] == {"prompt_tokens": 600, "completion_tokens": 89, "total_tokens": 689}


def test_the_openai_sdk_accumulates_the_translated_stream():
    streaming = pytest.importorskip("openai.lib.streaming.chat._completions")
    from openai.types.chat import ChatCompletionChunk

    state = streaming.ChatCompletionStreamState()
    for chunk in anthropic_to_openai("anthropic_text_and_tool_use.sse"):
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    completion = state.get_final_completion()
    message = completion.choices[0].message
    assert message.content == "Okay, let me check the weather in San Francisco."
    assert [call.id for call in message.tool_calls or []] == [
        "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "toolu_01HJ2ahg8fVPPyFa5pRBoSkU",
    ]
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 128


def test_the_anthropic_sdk_accumulates_the_translated_stream():
    messages = pytest.importorskip("anthropic.lib.streaming._messages")
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    raw = openai_to_anthropic("openai_text_and_tool_calls.sse").split(b"\n\n")
    for event in filter(None, raw):
        data = event_data(event)
        assert data is not None
        snapshot = messages.accumulate_event(
            event=orjson.loads(data), current_snapshot=snapshot, json_bufs=json_bufs
        )
    assert snapshot is not None
    assert snapshot.content[0].text == "Checking both cities."
    assert [(b.id, b.input) for b in snapshot.content[1:]] == [
        ("toolu_call_Qm3bXcZ1vF8YdN2kR7sTuW0e", {"location": "Paris"}),
        ("toolu_call_Hk8pLw2nJ5xGv1cB4rYtQe9s", {"location": "Tokyo"}),
    ]
    assert snapshot.stop_reason == "tool_use"
    assert (snapshot.usage.input_tokens, snapshot.usage.output_tokens) == (56, 58)
    assert snapshot.usage.cache_read_input_tokens == 256


def test_a_text_block_with_initial_text_and_unknown_events_are_handled():
    stream = AnthropicToOpenAIStream(created=1)
    stream.feed(
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3}},
        }
    )
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": "Hi"},
    }
    assert [c["choices"][0]["delta"] for c in stream.feed(start)] == [{"content": "Hi"}]
    thinking = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "x"},
    }
    assert stream.feed(thinking) == []
    assert stream.feed({"type": "ping"}) == []
    assert stream.feed({"type": "brand_new_event"}) == []


def test_message_delta_input_counts_override_message_start():
    stream = AnthropicToOpenAIStream(created=1)
    stream.feed(
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "m",
                "usage": {"input_tokens": 0, "output_tokens": 1},
            },
        }
    )
    # The usage goes with message_delta (the last usage), not message_stop: a stream cut
    # between the two is still charged what Anthropic counted.
    finish, usage_chunk = stream.feed(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"output_tokens": 9, "input_tokens": 12, "cache_read_input_tokens": 4},
        }
    )
    assert finish["choices"][0]["finish_reason"] == "length"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 16
    assert usage_chunk["usage"]["completion_tokens"] == 9
    assert stream.feed({"type": "message_stop"}) == []
    assert stream.done


def test_server_tools_seen_starting_are_counted_for_a_stream_cut_before_its_usage():
    runs: dict[str, int] = {}
    stream = AnthropicToOpenAIStream(created=1, runs_seen=runs)
    stream.feed({"type": "message_start", "message": {"id": "msg_1", "model": "m"}})
    for index in (0, 2):
        block = {"type": "server_tool_use", "id": f"srv_{index}", "name": "web_search", "input": {}}
        assert (
            stream.feed({"type": "content_block_start", "index": index, "content_block": block})
            == []
        )
    assert runs == {"web_search": 2}


def test_openai_text_after_a_tool_call_opens_a_new_text_block():
    stream = OpenAIToAnthropicStream()
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    chunks = [
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
        {
            "id": "c",
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "after"}, "finish_reason": "stop"}],
        },
    ]
    events = [e for chunk in chunks for e in stream.feed(chunk)] + stream.finish()
    types = [orjson.loads(event_data(e) or b"{}")["type"] for e in events]
    assert types == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert stream.finish() == []


def test_finishing_an_empty_openai_stream_still_gives_a_whole_message():
    events = OpenAIToAnthropicStream().finish()
    types = [orjson.loads(event_data(e) or b"{}")["type"] for e in events]
    assert types == ["message_start", "message_delta", "message_stop"]

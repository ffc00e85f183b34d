"""Property-based: a stream translated to OpenAI reads like the translated answer, and
translated back to Anthropic it still says the same thing."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.core.stream_tap import StreamTap
from routing.core.translate import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    anthropic_response_to_openai,
)
from tests.routing.core.translate.roundtrip_support import anthropic_messages, message_meaning


def event_stream(message: dict[str, Any], cuts: st.DataObject) -> list[dict[str, Any]]:
    """The Anthropic stream of `message`, its text and JSON cut into arbitrary pieces."""
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening, kind, key, whole = (
                {"type": "text", "text": ""},
                "text_delta",
                "text",
                block["text"],
            )
        else:
            opening = {**block, "input": {}}
            kind, key, whole = (
                "input_json_delta",
                "partial_json",
                orjson.dumps(block["input"]).decode(),
            )
        events.append({"type": "content_block_start", "index": index, "content_block": opening})
        points = sorted(cuts.draw(st.lists(st.integers(0, len(whole)), max_size=4)))
        for a, b in zip([0, *points], [*points, len(whole)], strict=True):
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": kind, key: whole[a:b]},
                }
            )
        events.append({"type": "content_block_stop", "index": index})
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(
        {
            "type": "message_delta",
            "delta": delta,
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        }
    )
    events.append({"type": "message_stop"})
    return events


@settings(max_examples=150, deadline=None)
@given(anthropic_messages(), st.data())
def test_a_stream_reads_like_the_answer_and_survives_the_trip_back(message, cuts):
    to_openai = AnthropicToOpenAIStream(created=7)
    chunks = [chunk for event in event_stream(message, cuts) for chunk in to_openai.feed(event)]

    tap = StreamTap()
    for chunk in chunks:
        tap.feed(chunk)
    assembled = tap.assembled_response()
    expected = anthropic_response_to_openai(message, created=7)
    assert assembled["choices"][0]["finish_reason"] == expected["choices"][0]["finish_reason"]
    got_message, want_message = (
        assembled["choices"][0]["message"],
        expected["choices"][0]["message"],
    )
    assert (got_message["content"] or "") == (want_message["content"] or "")
    got_calls = [
        (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
        for c in got_message.get("tool_calls", [])
    ]
    want_calls = [
        (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
        for c in want_message.get("tool_calls", [])
    ]
    assert got_calls == want_calls
    assert tap.usage is not None and tap.usage.prompt_tokens == expected["usage"]["prompt_tokens"]

    back = OpenAIToAnthropicStream()
    events = [event for chunk in chunks for event in back.feed(chunk)] + back.finish()
    rebuilt: dict[str, Any] = {}
    json_parts: dict[int, str] = {}
    for raw in events:
        event = orjson.loads(raw.split(b"\ndata: ", 1)[1])
        if event["type"] == "message_start":
            rebuilt = event["message"]
        elif event["type"] == "content_block_start":
            rebuilt["content"].append(event["content_block"])
        elif event["type"] == "content_block_delta":
            block, delta = rebuilt["content"][event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                json_parts[event["index"]] = (
                    json_parts.get(event["index"], "") + delta["partial_json"]
                )
        elif event["type"] == "message_delta":
            rebuilt["stop_reason"] = event["delta"]["stop_reason"]
            rebuilt["usage"] = event["usage"]
    for index, text in json_parts.items():
        rebuilt["content"][index]["input"] = orjson.loads(text)
    assert message_meaning(rebuilt) == message_meaning(message)

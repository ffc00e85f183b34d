"""`AnthropicAdapter` streams the mock provider cannot produce, replayed by `httpx.MockTransport`
in small network pieces: recorded transcripts, mid-stream errors, truncation, closing."""

from __future__ import annotations

import httpx
import orjson
import pytest

from routing.core.errors import UpstreamError
from routing.core.providers.anthropic import AnthropicAdapter
from tests.routing.core.providers.anthropic_support import (
    FIXTURES,
    chat_payload,
    chunks_of,
    drain,
    replaying,
    target,
)


async def test_the_recorded_stream_comes_out_as_the_recorded_chunks_whatever_the_network_cuts():
    body = (FIXTURES / "anthropic_text_and_tool_use.sse").read_bytes()
    expected = [
        orjson.loads(line)
        for line in (FIXTURES / "anthropic_text_and_tool_use.expected_openai.jsonl")
        .read_bytes()
        .splitlines()
    ]
    async with replaying(body) as http:
        stream = await AnthropicAdapter(http).chat_stream(
            target("https://api.anthropic.com"), chat_payload(), client_wants_usage=True
        )
        chunks = chunks_of(await drain(stream))
    created = chunks[0]["created"]
    assert chunks == [{**chunk, "created": created} for chunk in expected]


async def test_an_error_event_mid_stream_raises_stream_error_with_an_openai_body():
    body = (
        (FIXTURES / "anthropic_text_and_tool_use.sse")
        .read_bytes()
        .split(b"event: content_block_stop")[0]
    )
    body += b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    async with replaying(body) as http:
        stream = await AnthropicAdapter(http).chat_stream(
            target("https://api.anthropic.com"), chat_payload(), client_wants_usage=False
        )
        with pytest.raises(UpstreamError) as caught:
            await drain(stream)
    assert (caught.value.status, caught.value.cause) == (None, "stream_error")
    assert orjson.loads(caught.value.body)["error"] == {
        "message": "Overloaded",
        "type": "server_error",
        "param": None,
        "code": "overloaded_error",
    }
    assert "".join(stream.tap.content) == "Okay, let me check the weather in San Francisco."


async def test_a_stream_that_ends_cleanly_without_message_stop_is_broken():
    body = (
        (FIXTURES / "anthropic_text_and_tool_use.sse").read_bytes().split(b"event: message_stop")[0]
    )
    async with replaying(body) as http:
        stream = await AnthropicAdapter(http).chat_stream(
            target("https://api.anthropic.com"), chat_payload(), client_wants_usage=False
        )
        with pytest.raises(UpstreamError) as caught:
            await drain(stream)
    assert caught.value.cause == "stream_broken"


async def test_a_malformed_stream_event_is_a_bad_response():
    async with replaying(b"event: message_start\ndata: {not json\n\n") as http:
        stream = await AnthropicAdapter(http).chat_stream(
            target("https://api.anthropic.com"), chat_payload(), client_wants_usage=False
        )
        with pytest.raises(UpstreamError) as caught:
            await drain(stream)
    assert caught.value.cause == "bad_response"


async def test_a_non_json_success_body_is_a_bad_response():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>oops</html>")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(UpstreamError) as caught:
            await AnthropicAdapter(http).chat(target("https://api.anthropic.com"), chat_payload())
    assert (caught.value.status, caught.value.cause) == (502, "bad_response")


@pytest.mark.parametrize("ending", ["client_stops", "error_event"])
async def test_the_upstream_response_is_closed_however_the_stream_ends(ending):
    body = (FIXTURES / "anthropic_text_and_tool_use.sse").read_bytes()
    if ending == "error_event":
        body = (
            body.split(b"event: ping")[0]
            + b'data: {"type":"error","error":{"type":"api_error","message":"x"}}\n\n'
        )
    closed: list[bool] = []
    async with replaying(body, closed=closed) as http:
        stream = await AnthropicAdapter(http).chat_stream(
            target("https://api.anthropic.com"), chat_payload(), client_wants_usage=False
        )
        if ending == "client_stops":
            await anext(stream.events)
            await stream.events.aclose()
        else:
            with pytest.raises(UpstreamError):
                await drain(stream)
    assert closed == [True]

"""`AnthropicAdapter` over real HTTP against the bundled mock provider (Anthropic wire format)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest

from mock_provider.behaviour import tool_arguments
from mock_provider.testing import MockServer, run_mock_server
from routing.core.errors import UpstreamError
from routing.core.providers.anthropic import AnthropicAdapter
from routing.core.types import Usage
from tests.routing.core.providers.anthropic_support import (
    SCHEMA,
    TOOLS,
    chat_payload,
    chunks_of,
    drain,
    target,
)


@pytest.fixture(scope="module")
def mock() -> Iterator[MockServer]:
    with run_mock_server() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_mock(mock: MockServer) -> Iterator[None]:
    mock.reset()
    yield
    mock.reset()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def test_chat_translates_the_request_and_the_answer(mock, client):
    reply = await AnthropicAdapter(client).chat(target(mock.base_url), chat_payload())
    assert reply.status == 200
    assert orjson.loads(reply.body) == reply.parsed
    assert reply.parsed["object"] == "chat.completion"
    assert reply.parsed["id"].startswith("msg_")
    assert reply.parsed["model"] == "mock-claude"
    choice = reply.parsed["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Mock reply to: What is the weather in Paris today",
    }
    assert choice["finish_reason"] == "stop"
    # system (3 words) + user (7 words); the reply is 10 words.
    assert reply.usage == Usage(prompt_tokens=10, completion_tokens=10, cached_tokens=0)
    [request] = mock.requests()
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == "sk-ant-test"
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert request["headers"]["content-type"] == "application/json"
    assert request["body"]["system"] == "You are terse."
    assert request["body"]["max_tokens"] == 4096
    assert "stream" not in request["body"]


@pytest.mark.parametrize("suffix", ["/", "/v1", "/v1/"])
async def test_a_base_url_ending_in_v1_is_not_doubled(mock, client, suffix):
    await AnthropicAdapter(client).chat(target(mock.base_url + suffix), chat_payload())
    assert mock.requests()[0]["path"] == "/v1/messages"


async def test_max_tokens_truncation_reads_as_length(mock, client):
    reply = await AnthropicAdapter(client).chat(target(mock.base_url), chat_payload(max_tokens=3))
    assert reply.parsed["choices"][0]["message"]["content"] == "Mock reply to:"
    assert reply.parsed["choices"][0]["finish_reason"] == "length"


async def test_chat_tool_call_arguments_parse_to_the_providers_input(mock, client):
    reply = await AnthropicAdapter(client).chat(target(mock.base_url), chat_payload(tools=TOOLS))
    choice = reply.parsed["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("toolu_")
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == tool_arguments(SCHEMA)
    assert mock.requests()[0]["body"]["tools"] == [{"name": "get_weather", "input_schema": SCHEMA}]


async def test_a_tool_result_reaches_the_provider_as_a_tool_result_block(mock, client):
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    payload = chat_payload(tools=TOOLS)
    payload["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny and 24C"},
    ]
    reply = await AnthropicAdapter(client).chat(target(mock.base_url), payload)
    assert reply.parsed["choices"][0]["message"]["content"] == "Tool result received: Sunny and 24C"


@pytest.mark.parametrize("wants_usage", [False, True])
async def test_a_stream_reassembles_to_the_same_answer_and_the_tap_has_usage(
    mock, client, wants_usage
):
    adapter = AnthropicAdapter(client)
    stream = await adapter.chat_stream(
        target(mock.base_url), chat_payload(), client_wants_usage=wants_usage
    )
    assert stream.upstream_status == 200
    chunks = chunks_of(await drain(stream))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Mock reply to: What is the weather in Paris today"
    usage_chunks = [c for c in chunks if not c["choices"]]
    assert len(usage_chunks) == (1 if wants_usage else 0)
    if wants_usage:
        assert chunks[-1]["usage"]["prompt_tokens"] == 10
    assert stream.tap.usage == Usage(prompt_tokens=10, completion_tokens=10)
    assert stream.tap.finish_reason == "stop"
    assert "".join(stream.tap.content) == text
    assert mock.requests()[0]["body"]["stream"] is True


async def test_a_streamed_tool_call_reassembles_to_the_providers_input(mock, client):
    stream = await AnthropicAdapter(client).chat_stream(
        target(mock.base_url), chat_payload(tools=TOOLS), client_wants_usage=False
    )
    await drain(stream)
    [call] = stream.tap.assembled_tool_calls()
    assert call["id"].startswith("toolu_")
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == tool_arguments(SCHEMA)
    assert stream.tap.finish_reason == "tool_calls"


@pytest.mark.parametrize("streaming", [False, True])
async def test_429_is_an_upstream_error_with_retry_after_and_an_openai_body(
    mock, client, streaming
):
    mock.configure(status=429, retry_after=2)
    adapter = AnthropicAdapter(client)
    with pytest.raises(UpstreamError) as caught:
        if streaming:
            await adapter.chat_stream(
                target(mock.base_url), chat_payload(), client_wants_usage=True
            )
        else:
            await adapter.chat(target(mock.base_url), chat_payload())
    error = caught.value
    assert (error.status, error.cause, error.retry_after, error.retryable) == (
        429,
        "rate_limited",
        2.0,
        True,
    )
    assert orjson.loads(error.body) == {
        "error": {
            "message": "Injected mock error 429",
            "type": "rate_limit_exceeded",
            "param": None,
            "code": "rate_limit_error",
        }
    }


async def test_529_overloaded_is_kept_and_retryable(mock, client):
    mock.configure(status=529)
    with pytest.raises(UpstreamError) as caught:
        await AnthropicAdapter(client).chat(target(mock.base_url), chat_payload())
    assert (caught.value.status, caught.value.cause, caught.value.retryable) == (
        529,
        "overloaded",
        True,
    )
    assert orjson.loads(caught.value.body)["error"]["code"] == "overloaded_error"


async def test_a_wrong_key_is_the_deployments_fault_and_falls_over(mock, client):
    mock.configure(required_api_key="sk-right")
    with pytest.raises(UpstreamError) as caught:
        await AnthropicAdapter(client).chat(
            target(mock.base_url, api_key="sk-wrong"), chat_payload()
        )
    assert (caught.value.status, caught.value.cause, caught.value.retryable) == (
        401,
        "provider_auth",
        True,
    )
    assert orjson.loads(caught.value.body)["error"]["type"] == "authentication_error"


async def test_a_broken_stream_raises_stream_broken_after_what_arrived(mock, client):
    mock.configure(break_after_chunks=5)
    stream = await AnthropicAdapter(client).chat_stream(
        target(mock.base_url), chat_payload(), client_wants_usage=True
    )
    received: list[bytes] = []
    with pytest.raises(UpstreamError) as caught:
        async for event in stream.events:
            received.append(event)
    assert (caught.value.status, caught.value.cause) == (None, "stream_broken")
    # message_start, block start, ping, then two words.
    assert [orjson.loads(e[6:])["choices"][0]["delta"].get("content") for e in received] == [
        "",
        "Mock",
        " reply",
    ]


async def test_embeddings_are_refused_as_a_client_error(client):
    with pytest.raises(UpstreamError) as caught:
        await AnthropicAdapter(client).embeddings(
            target("https://api.anthropic.com"), {"input": "hi"}
        )
    assert (caught.value.status, caught.value.cause) == (400, "client_error")
    error = orjson.loads(caught.value.body)["error"]
    assert error["type"] == "invalid_request_error"
    assert "claude-eu" in error["message"] and "embeddings" in error["message"]

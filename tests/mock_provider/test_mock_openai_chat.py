"""The OpenAI chat wire format, through the official openai SDK and raw HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import orjson

from mock_provider.testing import MockServer

PORTFOLIO_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_portfolio",
        "parameters": {
            "type": "object",
            "properties": {
                "client_id": {"type": "string"},
                "year": {"type": "integer"},
                "currency": {"type": "string", "enum": ["EUR", "USD"]},
                "ratio": {"type": "number"},
                "active": {"type": "boolean"},
                "tags": {"type": "array"},
                "extra": {"type": "object"},
            },
            "required": ["client_id", "year", "currency", "ratio", "active", "tags", "extra"],
        },
    },
}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
EXPECTED_ARGS = {
    "client_id": "mock",
    "year": 1,
    "currency": "EUR",
    "ratio": 1.5,
    "active": True,
    "tags": [],
    "extra": {},
}
EXPECTED_ARGUMENTS = json.dumps(EXPECTED_ARGS, ensure_ascii=False, separators=(", ", ": "))


def _sse_payloads(text: str) -> list[str]:
    assert text.endswith("\n\n")
    events = text.split("\n\n")[:-1]
    assert all(e.startswith("data: ") for e in events)
    return [e[len("data: ") :] for e in events]


def test_it_echoes_the_last_user_message_with_word_based_usage(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="mock-gpt-2026-01-01",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "what is   the capital of France"}],
            },
        ],
    )
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "mock-gpt-2026-01-01"
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Mock reply to: what is the capital of France"
    assert choice.finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 3 + 2 + 2 + 6
    assert reply.usage.completion_tokens == 9
    assert reply.usage.total_tokens == 22
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 0
    assert reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0


def test_it_echoes_only_the_first_twelve_words(oai: openai.OpenAI) -> None:
    words = " ".join(f"w{i}" for i in range(20))
    reply = oai.chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": words}]
    )
    assert reply.choices[0].message.content == "Mock reply to: " + " ".join(words.split()[:12])


def test_max_tokens_truncates_the_reply_with_finish_reason_length(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="mock-gpt",
        max_completion_tokens=4,
        messages=[{"role": "user", "content": "one two three four five"}],
    )
    assert reply.choices[0].message.content == "Mock reply to: one"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_a_stream_splits_the_reply_by_words_and_ends_with_done(http: httpx.Client) -> None:
    body = {"model": "mock-gpt", "stream": True, "messages": [{"role": "user", "content": "a b"}]}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = _sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all("usage" not in c for c in chunks)  # not asked for: not sent at all
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert pieces == ["Mock", " reply", " to:", " a", " b"]
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert len({c["id"] for c in chunks}) == 1


def test_a_stream_reports_usage_only_in_a_final_chunk_when_asked(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="mock-gpt",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "tell me a story"}],
    )
    chunks = list(stream)
    assert all(c.usage is None for c in chunks[:-1])
    assert all(c.choices for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (4, 7)
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert text == "Mock reply to: tell me a story"


def test_a_stream_with_usage_sends_explicit_nulls_like_openai(http: httpx.Client) -> None:
    body = {
        "model": "mock-gpt",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
    chunks = [
        orjson.loads(p)
        for p in _sse_payloads(http.post("/v1/chat/completions", json=body).text)[:-1]
    ]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 1 + 4


async def test_the_async_client_streams_too(provider: MockServer) -> None:
    async with openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="k") as client:
        stream = await client.chat.completions.create(
            model="mock-gpt", stream=True, messages=[{"role": "user", "content": "async hello"}]
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == "Mock reply to: async hello"


def test_it_answers_a_tool_offer_with_a_tool_call(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "portfolio please"}],
        tools=[PORTFOLIO_TOOL, WEATHER_TOOL],
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_") and len(call.id) == len("call_") + 16
    assert call.function.name == "get_portfolio"
    assert call.function.arguments == EXPECTED_ARGUMENTS
    assert reply.usage is not None
    assert reply.usage.completion_tokens == -(-len(EXPECTED_ARGUMENTS) // 4)


def test_the_tool_call_id_is_a_function_of_the_request_body(oai: openai.OpenAI) -> None:
    def call_id(text: str) -> str:
        reply = oai.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": text}], tools=[WEATHER_TOOL]
        )
        calls = reply.choices[0].message.tool_calls
        assert calls is not None
        return calls[0].id

    assert call_id("same") == call_id("same") != call_id("other")


def test_tool_choice_picks_the_named_tool_and_none_disables_tools(oai: openai.OpenAI) -> None:
    named = oai.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "weather"}],
        tools=[PORTFOLIO_TOOL, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    calls = named.choices[0].message.tool_calls
    assert calls is not None and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    # No `required`: every property is filled in.
    assert calls[0].function.arguments == '{"city": "mock"}'
    plain = oai.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "weather"}],
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert plain.choices[0].message.tool_calls is None
    assert plain.choices[0].message.content == "Mock reply to: weather"


def test_a_streamed_tool_call_is_reassembled_by_the_sdk(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="mock-gpt",
        stream=True,
        messages=[{"role": "user", "content": "portfolio please"}],
        tools=[PORTFOLIO_TOOL],
    )
    chunks = list(stream)
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    assert first.tool_calls is not None
    head = first.tool_calls[0]
    assert head.function is not None
    assert (head.index, head.type, head.function.name, head.function.arguments) == (
        0,
        "function",
        "get_portfolio",
        "",
    )
    assert head.id is not None and head.id.startswith("call_")
    pieces = [
        c.choices[0].delta.tool_calls[0].function.arguments
        for c in chunks[1:]
        if c.choices[0].delta.tool_calls and c.choices[0].delta.tool_calls[0].function
    ]
    assert len(pieces) in (2, 3)
    assert "".join(p or "" for p in pieces) == EXPECTED_ARGUMENTS
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_the_stream_helper_reassembles_the_arguments(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model="mock-gpt",
        messages=[{"role": "user", "content": "portfolio please"}],
        tools=[PORTFOLIO_TOOL],
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.arguments == EXPECTED_ARGUMENTS


def test_a_tool_result_turn_gets_a_text_reply(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="mock-gpt",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny and 21 degrees"},
        ],
    )
    assert reply.choices[0].message.content == "Tool result received: sunny and 21 degrees"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens == 3 + 0 + 4


def test_it_lists_its_models(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert {"mock-gpt", "mock-gpt-2026-01-01"} <= set(ids)
    assert oai.models.retrieve("mock-gpt").owned_by == "mock"

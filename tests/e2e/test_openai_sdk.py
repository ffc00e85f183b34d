"""The official openai SDK against the live gateway and the mock provider."""

from __future__ import annotations

import base64
import json
import struct
import time
from decimal import Decimal
from typing import Any

import openai
import pytest

from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_portfolio",
        "description": "Look up a client's portfolio allocation",
        "parameters": {
            "type": "object",
            "properties": {"client_id": {"type": "string"}, "as_of": {"type": "string"}},
            "required": ["client_id"],
        },
    },
}


def client(gateway: Any, key: str, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0, **kwargs)


def np_free_floats(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def expected_cost(
    prompt: int, completion: int, input_price: str = "2.5", output_price: str = "10"
) -> Decimal:
    return (
        Decimal(prompt) * Decimal(input_price) + Decimal(completion) * Decimal(output_price)
    ) / Decimal(10**6)


def test_a_chat_completion_is_answered_and_audited(gateway, world):
    raw = client(gateway, world.key).chat.completions.with_raw_response.create(
        model="demo",
        messages=[{"role": "user", "content": "How is the Smith portfolio allocated?"}],
        user="advisor-17",
        extra_headers={"x-gateway-feature": "allocation-qa", "x-gateway-client-id": "client-42"},
    )
    reply = raw.parse()
    assert reply.choices[0].message.content.startswith("Mock reply to: How is the Smith")
    assert raw.headers["x-gateway-deployment"] == "mock-gpt"
    assert raw.headers["x-gateway-provider"] == "mock-ok"
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == expected_cost(
        reply.usage.prompt_tokens, reply.usage.completion_tokens
    )

    record = wait_for_record(raw.headers["x-request-id"])
    assert record.status == "success"
    assert (record.end_user, record.feature) == ("advisor-17", "allocation-qa")
    assert record.client_context == {"client_id": "client-42"}
    assert record.tenant.slug == "acme" and record.team.slug == "advisors"
    assert record.upstream_model == "mock-gpt-2026-01-01"
    assert record.request_body["model"] == "mock-gpt-2026-01-01"
    assert (
        record.response_body["choices"][0]["message"]["content"] == reply.choices[0].message.content
    )
    assert (record.prompt_tokens, record.completion_tokens) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert record.cost_usd == expected_cost(
        reply.usage.prompt_tokens, reply.usage.completion_tokens
    )
    assert record.latency_ms > 0


def test_a_stream_carries_usage_in_its_last_chunk_when_asked(gateway, world):
    stream = client(gateway, world.key).chat.completions.with_raw_response.create(
        model="demo",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Stream me a short answer please"}],
    )
    chunks = list(stream.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Mock reply to: Stream me")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text.split())
    assert all(c.usage is None for c in chunks[:-1])

    record = wait_for_record(stream.headers["x-request-id"])
    assert record.status == "success" and record.stream
    assert record.completion_tokens == chunks[-1].usage.completion_tokens
    assert record.response_body["choices"][0]["message"]["content"] == text
    assert record.ttft_ms is not None and record.ttft_ms <= record.latency_ms


def test_a_stream_is_charged_even_when_the_client_did_not_ask_for_usage(gateway, world):
    stream = client(gateway, world.key).chat.completions.with_raw_response.create(
        model="demo",
        stream=True,
        messages=[{"role": "user", "content": "one two three"}],
    )
    chunks = list(stream.parse())
    assert chunks and all(c.choices for c in chunks)  # no usage-only chunk reached the client
    record = wait_for_record(stream.headers["x-request-id"])
    assert record.prompt_tokens == 3 and record.completion_tokens > 0
    assert record.cost_usd == expected_cost(record.prompt_tokens, record.completion_tokens)


def test_a_tool_call_round_trip_passes_through_untouched(gateway, world, mock_server):
    api = client(gateway, world.key)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Allocation for client C-9?"}]
    first = api.chat.completions.with_raw_response.create(
        model="demo", messages=messages, tools=[WEATHER_TOOL]
    )
    call = first.parse().choices[0].message.tool_calls[0]
    assert first.parse().choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_portfolio"
    # The arguments string is exactly what the provider sent, spacing included.
    assert call.function.arguments == json.dumps(
        {"client_id": "mock"}, ensure_ascii=False, separators=(", ", ": ")
    )
    raw_body = json.loads(first.http_response.content)
    assert (
        raw_body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        == call.function.arguments
    )

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "60% equities, 40% bonds"},
    ]
    second = api.chat.completions.with_raw_response.create(
        model="demo", messages=messages, tools=[WEATHER_TOOL]
    )
    assert (
        second.parse().choices[0].message.content.startswith("Tool result received: 60% equities")
    )

    # The provider received the tool definitions and the tool result unchanged.
    received = [r for r in mock_server.requests() if r["path"] == "/v1/chat/completions"][-1][
        "body"
    ]
    assert received["tools"] == [WEATHER_TOOL]
    assert received["messages"][-1] == messages[-1]

    asked = wait_for_record(first.headers["x-request-id"])
    assert asked.tool_calls[0]["function"] == {
        "name": "get_portfolio",
        "arguments": call.function.arguments,
    }
    answered = wait_for_record(second.headers["x-request-id"])
    assert answered.tool_results == [
        {"tool_call_id": call.id, "content": "60% equities, 40% bonds"}
    ]


def test_a_streamed_tool_call_is_reassembled_by_the_sdk(gateway, world):
    api = client(gateway, world.key)
    stream = api.chat.completions.with_raw_response.create(
        model="demo",
        stream=True,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        messages=[{"role": "user", "content": "Allocation for client C-9?"}],
    )
    arguments = ""
    for chunk in stream.parse():
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += delta.function.arguments or ""
    assert json.loads(arguments) == {"client_id": "mock"}
    record = wait_for_record(stream.headers["x-request-id"])
    assert record.tool_calls[0]["function"]["arguments"] == arguments


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_come_back_in_either_encoding(gateway, world, encoding):
    raw = client(gateway, world.key).embeddings.with_raw_response.create(
        model="mock-embed", input=["first text", "second text"], encoding_format=encoding
    )
    result = raw.parse()
    vector = result.data[0].embedding
    if encoding == "base64":  # asked for explicitly, the SDK hands back the string as is
        vector = np_free_floats(vector)
    assert len(result.data) == 2 and len(vector) == 16
    assert all(isinstance(value, float) for value in vector)
    record = wait_for_record(raw.headers["x-request-id"])
    assert record.endpoint == "embeddings" and record.prompt_tokens == result.usage.prompt_tokens


def test_the_sdk_default_encoding_for_embeddings_works(gateway, world):
    result = client(gateway, world.key).embeddings.create(model="mock-embed", input="hello")
    assert len(result.data[0].embedding) == 16


def test_models_lists_only_what_the_key_may_use(gateway, world):
    everything = {m.id for m in client(gateway, world.key).models.list()}
    assert {"demo", "with-fallback", "mock-gpt", "mock-embed"} <= everything
    assert {m.id for m in client(gateway, world.limited_key).models.list()} == {"demo"}
    assert client(gateway, world.limited_key).models.retrieve("demo").id == "demo"
    with pytest.raises(openai.NotFoundError):
        client(gateway, world.limited_key).models.retrieve("mock-gpt")


def test_n_calls_leave_n_complete_records_with_tokens_and_cost(gateway, world):
    from audit.models import AuditRecord

    api = client(gateway, world.key)
    ids, expected = [], Decimal(0)
    for i in range(12):
        raw = api.chat.completions.with_raw_response.create(
            model="demo",
            messages=[{"role": "user", "content": f"question number {i} " + "word " * i}],
            user="batch-user",
        )
        usage = raw.parse().usage
        ids.append(raw.headers["x-request-id"])
        expected += expected_cost(usage.prompt_tokens, usage.completion_tokens)
        assert usage.prompt_tokens == 3 + i
    records = AuditRecord.objects.filter(request_id__in=ids)
    assert records.count() == 12
    assert all(
        r.status == "success" and r.completed_at and r.prompt_tokens and r.completion_tokens
        for r in records
    )
    assert sum(r.cost_usd for r in records) == expected


def test_a_rate_limited_primary_falls_over_to_the_next_deployment(gateway, world):
    raw = client(gateway, world.key).chat.completions.with_raw_response.create(
        model="with-fallback", messages=[{"role": "user", "content": "Are you there?"}]
    )
    assert raw.parse().choices[0].message.content.startswith("Mock reply to")
    assert raw.headers["x-gateway-deployment"] == "mock-gpt"
    record = wait_for_record(raw.headers["x-request-id"])
    primary, answer = record.attempts
    assert (answer["deployment"], answer["status"]) == ("mock-gpt", 200)
    # Either it was tried and said 429, or an earlier 429's Retry-After still had it cooling down.
    assert primary["deployment"] == "mock-gpt-limited"
    assert (primary["status"], primary["error"]) in {(429, "rate_limited"), (None, "cooling_down")}


def test_after_a_429_the_rate_limited_deployment_is_spared_until_retry_after_passes(
    gateway, world, failing_mock
):
    api = client(gateway, world.key)
    ask = {"model": "with-fallback", "messages": [{"role": "user", "content": "hello again"}]}
    api.chat.completions.create(
        **ask
    )  # the primary answers 429 with Retry-After: 1 (or is cooling)
    seen = len(failing_mock.requests())
    raw = api.chat.completions.with_raw_response.create(**ask)
    assert len(failing_mock.requests()) == seen  # not asked again while cooling down
    record = wait_for_record(raw.headers["x-request-id"])
    assert [(a["deployment"], a["error"]) for a in record.attempts] == [
        ("mock-gpt-limited", "cooling_down"),
        ("mock-gpt", ""),
    ]


def test_when_every_deployment_is_rate_limited_the_client_gets_a_429_with_retry_after(
    gateway, world
):
    with pytest.raises(openai.RateLimitError) as caught:
        client(gateway, world.key).chat.completions.create(
            model="always-limited", messages=[{"role": "user", "content": "hello"}]
        )
    response = caught.value.response
    assert response.headers["retry-after"] == "1"
    record = wait_for_record(response.headers["x-request-id"])
    assert record.status == "upstream_error" and record.http_status == 429


def test_a_stream_that_breaks_mid_way_ends_with_an_error_event_and_a_failed_record(gateway, world):
    stream = client(gateway, world.key).chat.completions.with_raw_response.create(
        model="demo",
        stream=True,
        messages=[{"role": "user", "content": "[mock break_after_chunks=3] tell me a long story"}],
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream.parse():
            received.append(chunk)
    assert received, "the chunks before the break reached the client"
    assert "broke off" in str(caught.value)
    record = wait_for_record(stream.headers["x-request-id"])
    assert record.status == "failed" and record.error_type == "stream_broken"


def test_a_residency_bound_tenant_is_never_sent_out_of_region(gateway, world, mock_server):
    before = len(mock_server.requests())
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client(gateway, world.eu_key).chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "hello"}]
        )
    assert "residency region 'eu'" in caught.value.message
    assert len(mock_server.requests()) == before


def test_a_sticky_canary_keeps_each_end_user_on_one_deployment(gateway, world):
    api = client(gateway, world.key)

    def deployment_for(user: str) -> str:
        raw = api.chat.completions.with_raw_response.create(
            model="canary-chat", messages=[{"role": "user", "content": "hi"}], user=user
        )
        return raw.headers["x-gateway-deployment"]

    sides = {f"advisor-{i}": deployment_for(f"advisor-{i}") for i in range(40)}
    assert set(sides.values()) == {"mock-gpt", "mock-gpt-next"}
    for user, side in list(sides.items())[:8]:
        assert {deployment_for(user) for _ in range(4)} == {side}


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "first-token"])
def test_a_deployment_that_breaks_the_routes_latency_contract_is_fallen_over(
    gateway, world, stream
):
    started = time.perf_counter()
    raw = client(gateway, world.key).chat.completions.with_raw_response.create(
        model="latency-contract",
        stream=stream,
        messages=[{"role": "user", "content": "quick please"}],
    )
    if stream:
        list(raw.parse())
    assert time.perf_counter() - started < 1.2  # the slow deployment takes 1.5 s
    assert raw.headers["x-gateway-deployment"] == "mock-gpt"
    slow, answer = wait_for_record(raw.headers["x-request-id"]).attempts
    assert slow["deployment"] == "mock-gpt-slow" and slow["error"] in {"timeout", "cooling_down"}
    assert answer["status"] == 200

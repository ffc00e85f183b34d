"""The official openai SDK's Responses API against `/v1/responses`, served by either wire format."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

PORTFOLIO_TOOL = {
    "type": "function",
    "name": "get_allocation",
    "description": "Look up a client's allocation",
    "parameters": {
        "type": "object",
        "properties": {"client_id": {"type": "string"}},
        "required": ["client_id"],
    },
}
BOTH = pytest.mark.parametrize(
    "model", ["demo", "claude-fallback"], ids=["openai-provider", "anthropic-provider"]
)


def client(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


@BOTH
def test_a_response_is_answered_with_instructions_and_audited(gateway, world, model):
    raw = client(gateway, world.key).responses.with_raw_response.create(
        model=model,
        instructions="You are a careful advisor assistant.",
        input="How is the Smith portfolio allocated?",
        user="advisor-17",
        store=True,
    )
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.output_text.startswith("Mock reply to: How is the Smith")
    assert response.instructions == "You are a careful advisor assistant."
    assert (
        response.store is True
    )  # kept for previous_response_id (tests/e2e/test_responses_state.py)
    assert response.usage is not None and response.usage.input_tokens > 0
    record = wait_for_record(raw.headers["x-request-id"])
    assert response.id == "resp_" + record.request_id.removeprefix("req_")
    assert (record.endpoint, record.status, record.end_user) == (
        "responses",
        "success",
        "advisor-17",
    )
    assert record.request_body["messages"][0] == {
        "role": "system",
        "content": "You are a careful advisor assistant.",
    }
    assert record.completion_tokens == response.usage.output_tokens
    assert record.cost_usd > 0


@BOTH
def test_a_function_tool_round_trip_works_streamed_and_not(gateway, world, model):
    sdk = client(gateway, world.key)
    question = {"role": "user", "content": "Allocation for client C-9?"}
    first = sdk.responses.create(model=model, input=[question], tools=[PORTFOLIO_TOOL])
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_allocation" and json.loads(call.arguments) == {"client_id": "mock"}

    events = list(
        sdk.responses.create(
            model=model,
            input=[
                question,
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                },
                {"type": "function_call_output", "call_id": call.call_id, "output": "60% equities"},
            ],
            tools=[PORTFOLIO_TOOL],
            stream=True,
        )
    )
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.startswith("Tool result received: 60% equities")
    final = events[-1].response
    assert final.output_text == text
    assert final.usage is not None and final.usage.output_tokens > 0


@BOTH
def test_a_streamed_function_call_reaches_the_sdk_helper_whole(gateway, world, model):
    with client(gateway, world.key).responses.stream(
        model=model, input="Allocation for client C-9?", tools=[PORTFOLIO_TOOL]
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    call = next(item for item in final.output if item.type == "function_call")
    assert "".join(deltas) == call.arguments
    assert json.loads(call.arguments) == {"client_id": "mock"}
    assert call.status == "completed"


def test_state_the_gateway_does_not_keep_is_refused_in_openais_format(gateway, world):
    with pytest.raises(openai.BadRequestError) as refused:
        client(gateway, world.key).responses.create(
            model="demo", input="and then?", background=True
        )
    error = refused.value.body
    assert error["code"] == "stateless_gateway" and error["param"] == "background"
    assert "previous_response_id" in error["message"]
    # A conversation it does keep (tests/e2e/test_conversations.py): an unknown one is a 404.
    with pytest.raises(openai.NotFoundError) as unknown:
        client(gateway, world.key).responses.create(
            model="demo", input="and then?", conversation="conv_123"
        )
    assert unknown.value.body["code"] == "conversation_not_found"

    with pytest.raises(openai.BadRequestError) as hosted:
        client(gateway, world.key).responses.create(
            model="demo", input="search", tools=[{"type": "web_search"}]
        )
    assert hosted.value.body["param"] == "tools[0].type"

    with pytest.raises(openai.NotFoundError):
        client(gateway, world.key).responses.create(model="gpt-17", input="hi")


def test_prompts_from_the_registry_apply_to_responses_too(gateway, world):
    with pytest.raises(openai.BadRequestError) as unnamed:
        client(gateway, world.key).responses.create(
            model="demo", input="hi", extra_body={"prompt_variables": {"client": "Smith"}}
        )
    assert unnamed.value.body["code"] == "prompt_not_named"
    with pytest.raises(openai.NotFoundError) as unknown:
        client(gateway, world.key).responses.create(
            model="demo", input="hi", extra_headers={"x-gateway-prompt": "no-such-prompt"}
        )
    assert "no-such-prompt" in unknown.value.body["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_rate_limited_primary_fails_over_to_anthropic_unseen(gateway, world, stream):
    raw = client(gateway, world.key).responses.with_raw_response.create(
        model="advisor-chat", input="How is the Smith portfolio allocated?", stream=stream
    )
    if stream:
        events = list(raw.parse())
        assert events[-1].type == "response.completed"
        text = events[-1].response.output_text
    else:
        text = raw.parse().output_text
    assert text.startswith("Mock reply to: How is the Smith")
    record = wait_for_record(raw.headers["x-request-id"])
    assert [a["deployment"] for a in record.attempts][-2:] == [
        "mock-gpt-limited",
        "claude-fallback",
    ]
    assert record.status == "success"


def test_a_stream_that_breaks_ends_with_an_error_event(gateway, world):
    raw = client(gateway, world.key).responses.with_raw_response.create(
        model="demo", input="[mock break_after_chunks=3] tell me a long story", stream=True
    )
    events = list(raw.parse())
    assert events[0].type == "response.created"
    assert events[-1].type == "error" and events[-1].code == "stream_broken"
    assert "incomplete" in events[-1].message
    record = wait_for_record(raw.headers["x-request-id"])
    assert (record.status, record.error_type) == ("failed", "stream_broken")

"""The official anthropic SDK against the gateway's `/v1/messages`, served by either wire format."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

PORTFOLIO_TOOL = {
    "name": "get_allocation",
    "description": "Look up a client's allocation",
    "input_schema": {
        "type": "object",
        "properties": {"client_id": {"type": "string"}},
        "required": ["client_id"],
    },
}


def client(gateway: Any, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


@pytest.mark.parametrize(
    "model", ["demo", "claude-fallback"], ids=["openai-provider", "anthropic-provider"]
)
def test_a_message_is_answered_in_anthropics_format_and_audited(gateway, world, model):
    raw = client(gateway, world.key).messages.with_raw_response.create(
        model=model,
        max_tokens=100,
        system="You are a careful advisor assistant.",
        messages=[{"role": "user", "content": "How is the Smith portfolio allocated?"}],
        metadata={"user_id": "advisor-17"},
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].text.startswith("Mock reply to: How is the Smith")
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    record = wait_for_record(raw.headers["x-request-id"])
    assert (record.endpoint, record.status, record.end_user) == (
        "messages",
        "success",
        "advisor-17",
    )
    assert record.completion_tokens == message.usage.output_tokens


@pytest.mark.parametrize(
    "model", ["demo", "claude-fallback"], ids=["openai-provider", "anthropic-provider"]
)
def test_a_streamed_tool_use_reaches_the_anthropic_sdk_whole(gateway, world, model):
    with client(gateway, world.key).messages.stream(
        model=model,
        max_tokens=200,
        tools=[PORTFOLIO_TOOL],
        messages=[{"role": "user", "content": "Allocation for client C-9?"}],
    ) as stream:
        final = stream.get_final_message()
    tool_use = next(block for block in final.content if block.type == "tool_use")
    assert tool_use.name == "get_allocation" and tool_use.input == {"client_id": "mock"}
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens > 0


def test_a_tool_result_turn_is_understood(gateway, world):
    first = client(gateway, world.key).messages.create(
        model="demo",
        max_tokens=100,
        tools=[PORTFOLIO_TOOL],
        messages=[{"role": "user", "content": "Allocation for client C-9?"}],
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")
    second = client(gateway, world.key).messages.create(
        model="demo",
        max_tokens=100,
        tools=[PORTFOLIO_TOOL],
        messages=[
            {"role": "user", "content": "Allocation for client C-9?"},
            {"role": "assistant", "content": [tool_use.model_dump()]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "60% equities"}
                ],
            },
        ],
    )
    assert second.content[0].text.startswith("Tool result received: 60% equities")


def test_errors_come_back_in_anthropics_format(gateway, world):
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client(gateway, world.key).messages.create(
            model="gpt-17", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert unknown.value.body["type"] == "error"
    assert unknown.value.body["error"]["type"] == "not_found_error"
    assert "gpt-17" in unknown.value.body["error"]["message"]

    with pytest.raises(anthropic.AuthenticationError) as bad_key:
        client(gateway, "gw-nobody-knows-this-key-00000000").messages.create(
            model="demo", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert bad_key.value.body["error"]["type"] == "authentication_error"

    with pytest.raises(anthropic.BadRequestError) as no_max_tokens:
        client(gateway, world.key).messages.create(
            model="demo", max_tokens=0, messages=[{"role": "user", "content": "hi"}]
        )
    assert "max_tokens" in no_max_tokens.value.body["error"]["message"]

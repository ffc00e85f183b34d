"""What an Anthropic client notices beyond the body: the `request-id` header, input tokens at
`message_start`, ids in Anthropic's own format on translated answers, `system` refused inside
`messages`, 529 kept as 529, `GET /v1/models` in Anthropic's shape, and no internal exception
text in any error body. One test each, on the live gateway and the mock provider."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

VERSION = "2023-06-01"


def post(gateway: Any, key: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        gateway.api_url + "/messages",
        json=body,
        headers={"x-api-key": key, "anthropic-version": VERSION, **headers},
        timeout=30,
    )


def ask(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines and "data" in lines:
            events.append((lines["event"], orjson.loads(lines["data"])))
    return events


@pytest.mark.parametrize("model", ["claude-fallback", "demo"], ids=["native", "translated"])
def test_every_anthropic_answer_carries_a_request_id_header(gateway, world, model):
    answer = post(gateway, world.key, ask(model, "Hello."))
    assert answer.status_code == 200
    assert answer.headers["request-id"] == answer.headers["x-request-id"]
    refused = post(gateway, world.key, {"model": model, "messages": []})
    assert refused.status_code == 400 and refused.headers["request-id"].startswith("req_")


@pytest.mark.parametrize("model", ["claude-fallback", "demo"], ids=["native", "translated"])
def test_message_start_carries_the_input_tokens(gateway, world, model):
    answer = post(gateway, world.key, ask(model, "Count these words for me, please.", stream=True))
    events = sse(answer.text)
    start = next(data for name, data in events if name == "message_start")
    assert start["message"]["usage"]["input_tokens"] > 0


def test_a_translated_answer_uses_anthropics_id_formats(gateway, world):
    tool = {
        "name": "get_weather",
        "description": "Weather for a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    first = post(
        gateway,
        world.key,
        ask("demo", "Weather in Paris?", tools=[tool]),
    )
    assert first.status_code == 200, first.text
    message = first.json()
    assert message["id"].startswith("msg_")
    uses = [block for block in message["content"] if block["type"] == "tool_use"]
    assert uses and all(block["id"].startswith("toolu_") for block in uses)
    # The id goes back as the client received it and the turn still works.
    follow = {
        "model": "demo",
        "max_tokens": 64,
        "tools": [tool],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": message["content"]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": uses[0]["id"], "content": "Sunny"}
                ],
            },
        ],
    }
    second = post(gateway, world.key, follow)
    assert second.status_code == 200, second.text
    assert second.json()["id"].startswith("msg_")
    # The record names the tool call by the id the client's logs show, as does its tool result.
    record = wait_for_record(first.headers["request-id"])
    assert [c["id"] for c in record.tool_calls] == [u["id"] for u in uses]


def test_a_streamed_translated_tool_call_is_recorded_under_the_clients_id(gateway, world):
    tool = {
        "name": "get_weather",
        "description": "Weather for a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    answer = post(gateway, world.key, ask("demo", "Weather in Paris?", tools=[tool], stream=True))
    assert answer.status_code == 200, answer.text
    starts = [
        data["content_block"]
        for name, data in sse(answer.text)
        if name == "content_block_start" and data["content_block"]["type"] == "tool_use"
    ]
    assert starts and all(block["id"].startswith("toolu_") for block in starts)
    record = wait_for_record(answer.headers["request-id"])
    assert [c["id"] for c in record.tool_calls] == [b["id"] for b in starts]


@pytest.mark.parametrize("model", ["claude-fallback", "demo"], ids=["native", "translated"])
def test_a_system_role_inside_messages_is_refused_as_anthropic_does(gateway, world, model):
    body = {
        "model": model,
        "max_tokens": 64,
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hello."},
        ],
    }
    refused = post(gateway, world.key, body)
    assert refused.status_code == 400
    error = refused.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert 'Unexpected role "system"' in error["error"]["message"]
    assert "top-level `system` parameter" in error["error"]["message"]


@pytest.mark.parametrize("model", ["claude-fallback", "demo"], ids=["native", "translated"])
def test_a_system_role_between_turns_is_accepted_under_the_beta_that_allows_it(
    gateway, world, model
):
    # Claude Code sends system messages between turns together with this beta.
    body = {
        "model": model,
        "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "Hello."},
            {"role": "system", "content": "Be terse."},
        ],
    }
    answer = post(gateway, world.key, body, **{"anthropic-beta": "per-turn-control-2026-07-01"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["type"] == "message"


def test_an_overloaded_provider_answers_529_to_anthropic_clients(gateway, world):
    answer = post(gateway, world.key, ask("claude-fallback", "Hi [mock status=529]"))
    assert answer.status_code == 529
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "overloaded_error"


def test_models_are_listed_in_anthropics_shape_for_anthropic_clients(gateway, world):
    anthropic = httpx.get(
        gateway.api_url + "/models",
        headers={"x-api-key": world.key, "anthropic-version": VERSION},
    ).json()
    # One page of Anthropic's list shape (other tests may have added routes beyond it).
    assert isinstance(anthropic["has_more"], bool) and anthropic["data"]
    first = anthropic["data"][0]
    assert first["type"] == "model" and {"id", "display_name", "created_at"} <= first.keys()
    assert (
        anthropic["first_id"] == first["id"] and anthropic["last_id"] == anthropic["data"][-1]["id"]
    )
    one = httpx.get(
        gateway.api_url + "/models/demo",
        headers={"x-api-key": world.key, "anthropic-version": VERSION},
    ).json()
    assert one["type"] == "model" and one["id"] == "demo"
    openai_shape = httpx.get(
        gateway.api_url + "/models", headers={"authorization": f"Bearer {world.key}"}
    ).json()
    assert openai_shape["object"] == "list" and openai_shape["data"][0]["object"] == "model"


def test_no_error_body_carries_internal_exception_text(gateway, world):
    # A stream the provider breaks off mid-answer, and a provider that answers nothing useful.
    broken = post(
        gateway,
        world.key,
        ask("demo", f"Tell me a story {uuid.uuid4().hex} [mock break_after_chunks=2]", stream=True),
    )
    failed = post(gateway, world.key, ask("claude-fallback", "Hi [mock status=500]"))
    for text in (broken.text, failed.text):
        for leak in ("Traceback", "Error(", "httpx", "aiohttp", "Exception", "127.0.0.1"):
            assert leak not in text, (leak, text)
    assert any(name == "error" for name, _ in sse(broken.text))
    assert failed.json()["error"]["type"] == "api_error"

"""Drill: the primary provider answers 429 to everything; users never notice.

The seed's fifth incident: "an OpenAI 429 should trigger a seamless route to a secondary provider
like Anthropic, turning a four-minute outage into a non-event". The route `advisor-chat` has an
OpenAI-format primary that rate-limits every request and an Anthropic-format fallback.
Run alone: `pytest tests/drills/test_provider_429_failover.py`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

REQUESTS = 500
PORTFOLIO_TOOL = {
    "type": "function",
    "function": {
        "name": "get_allocation",
        "parameters": {
            "type": "object",
            "properties": {"client_id": {"type": "string"}},
            "required": ["client_id"],
        },
    },
}


def _one(api: openai.OpenAI, i: int) -> tuple[str, str]:
    """One advisor request; returns (request id, what the SDK saw)."""
    messages = [{"role": "user", "content": f"Allocation question {i} for client C-{i}"}]
    tools = [PORTFOLIO_TOOL] if i % 4 == 0 else None
    extra: dict[str, Any] = {"tools": tools} if tools else {}
    if i % 5 == 0:  # every fifth request streams
        raw = api.chat.completions.with_raw_response.create(
            model="advisor-chat",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
        text, arguments = "", ""
        for chunk in raw.parse():
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for call in choice.delta.tool_calls or []:
                    arguments += call.function.arguments or ""
        seen = f"tool:{json.loads(arguments)}" if tools else f"text:{text}"
        return raw.headers["x-request-id"], seen
    raw = api.chat.completions.with_raw_response.create(
        model="advisor-chat", messages=messages, **extra
    )
    message = raw.parse().choices[0].message
    seen = (
        f"tool:{json.loads(message.tool_calls[0].function.arguments)}"
        if tools
        else f"text:{message.content}"
    )
    return raw.headers["x-request-id"], seen


def test_a_429_storm_on_the_primary_is_a_non_event_for_users(gateway, world, failing_mock):
    asked_before = len(failing_mock.requests())
    api = openai.OpenAI(base_url=gateway.api_url, api_key=world.key, max_retries=0)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(
            pool.map(lambda i: _one(api, i), range(REQUESTS))
        )  # raises on any client error

    assert len(results) == REQUESTS
    for i, (_, seen) in enumerate(results):
        if i % 4 == 0:
            assert seen == "tool:{'client_id': 'mock'}"
        else:
            assert seen.startswith(f"text:Mock reply to: Allocation question {i} ")

    # Cooling down after its first 429s, the rate-limited primary is not hammered 500 times.
    assert len(failing_mock.requests()) - asked_before < REQUESTS / 10

    for request_id, _ in results:
        record = wait_for_record(request_id)
        assert record.status == "success"
        primary, answer = record.attempts
        # The primary is tried and answers 429, or, while an earlier 429's Retry-After (or the
        # breaker) holds, is passed over without being asked: both are on the record.
        assert primary["deployment"] == "mock-gpt-limited"
        assert (primary["status"], primary["error"]) in {
            (429, "rate_limited"),
            (None, "cooling_down"),
        }
        assert (answer["deployment"], answer["status"]) == ("claude-fallback", 200)
        assert record.provider_name == "mock-anthropic"
        # ...and why: the route's order, with the cooling primary named when it was passed over.
        if primary["error"] == "cooling_down":
            assert record.routing["reason"] == (
                "ordered: claude-fallback first; cooling down, tried last: mock-gpt-limited"
            )
        else:
            assert record.routing["reason"] == "ordered: mock-gpt-limited first"

"""Claude Code's `/v1/messages` requests keep every field on an Anthropic-format deployment, and
a cross-format route names what it cannot carry instead of dropping it silently."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ACCOUNT = "5f0c3b8e-8d1e-4c3a-9a51-0a7b2d1c4e6f"
SESSION = "9b1d2f3a-4c5e-4f60-8a7b-1c2d3e4f5a6b"
DEVICE = "a" * 64
BETAS = "context-management-2025-06-27,interleaved-thinking-2025-05-14"
# What Claude Code sends, shortened: adaptive thinking, effort, context management, prompt
# caching at the top level and on blocks, a server tool next to its own tools, its identity.
CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-fallback",
    "max_tokens": 32000,
    "system": [
        {
            "type": "text",
            "text": "You are Claude Code, Anthropic's CLI.",
            "cache_control": {"type": "ephemeral"},
        }
    ],
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "What changed in the last release?"}],
        }
    ],
    "thinking": {"type": "adaptive"},
    "output_config": {"effort": "high"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "cache_control": {"type": "ephemeral"},
    "tools": [
        {
            "name": "Read",
            "description": "Read a file from the local filesystem.",
            "input_schema": {
                "type": "object",
                "properties": {"file_path": {"type": "string"}},
                "required": ["file_path"],
            },
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    ],
    "metadata": {
        "user_id": json.dumps(
            {"device_id": DEVICE, "account_uuid": ACCOUNT, "session_id": SESSION},
            separators=(",", ":"),
        )
    },
}


def send(gateway: Any, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/messages",
        json=body,
        headers={"x-api-key": key, "anthropic-version": "2023-06-01", "anthropic-beta": BETAS},
        timeout=20,
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_anthropic_deployment_receives_the_claude_code_body_untouched(
    gateway, world, mock_server, stream
):
    body = {**copy.deepcopy(CLAUDE_CODE_BODY), "stream": stream}
    response = send(gateway, world.key, body)

    assert response.status_code == 200, response.text
    upstream = mock_server.requests()[-1]
    assert upstream["path"] == "/v1/messages"
    assert upstream["body"] == {**body, "model": "mock-claude"}  # only the model name changed
    assert upstream["headers"]["anthropic-beta"] == BETAS
    assert "x-gateway-dropped-fields" not in response.headers
    if stream:
        kinds = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    else:
        assert response.json()["type"] == "message"
    record = wait_for_record(response.headers["x-request-id"])
    assert record.request_body == {**body, "model": "mock-claude"}  # what was sent, recorded
    assert record.status == "success" and record.cost_usd > 0
    assert "dropped_fields" not in record.routing


def test_a_cross_format_route_maps_thinking_and_names_what_it_drops(gateway, world, mock_server):
    body = {**copy.deepcopy(CLAUDE_CODE_BODY), "model": "demo"}
    response = send(gateway, world.key, body)

    assert response.status_code == 200, response.text
    dropped = ["cache_control", "context_management", "tools[1] (web_search_20250305)"]
    assert response.headers["x-gateway-dropped-fields"] == ", ".join(dropped)
    upstream = mock_server.requests()[-1]["body"]
    assert upstream["reasoning_effort"] == "high"  # output_config.effort, mapped
    assert [t["function"]["name"] for t in upstream["tools"]] == ["Read"]
    record = wait_for_record(response.headers["x-request-id"])
    assert record.routing["dropped_fields"] == dropped


def test_output_config_format_becomes_response_format_across_formats(gateway, world, mock_server):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    body = {
        "model": "demo",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Count"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    response = send(gateway, world.key, body)

    assert response.status_code == 200, response.text
    assert "x-gateway-dropped-fields" not in response.headers
    upstream = mock_server.requests()[-1]["body"]
    assert upstream["response_format"]["json_schema"]["schema"] == schema

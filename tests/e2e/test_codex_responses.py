"""Codex CLI's `/v1/responses` requests, as Codex sends them, through the live gateway.

The body below has the shape Codex 0.171 sends (captured from `codex exec` against a recording
server; texts shortened): streamed, `store: false`, `reasoning`, `include`, `prompt_cache_key`,
`client_metadata`, and its tool kinds: functions (`exec_command`, `view_image`), the freeform
`apply_patch` with a Lark grammar (`custom`), a `namespace` of agent tools, a client-run
`tool_search`, and the hosted `web_search`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_provider.behaviour import FREEFORM_INPUT
from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Use the `apply_patch` tool to edit files. This is a FREEFORM tool.",
    "format": {
        "type": "grammar",
        "syntax": "lark",
        "definition": 'start: "*** Begin Patch" LF hunk* "*** End Patch" LF?\nhunk: /.+/ LF\n'
        "%import common.LF",
    },
}
EXEC_COMMAND = {
    "type": "function",
    "name": "exec_command",
    "description": "Runs a command in a PTY.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
        "required": ["cmd"],
        "additionalProperties": False,
    },
}
AGENTS = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for spawning and managing sub-agents.",
    "tools": [
        {
            "type": "function",
            "name": "spawn_agent",
            "description": "Start a sub-agent.",
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"message": {"type": "string"}},
                "required": ["message"],
            },
        }
    ],
}
TOOL_SEARCH = {
    "type": "tool_search",
    "execution": "client",
    "description": "Searches over deferred tool metadata.",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "number"}},
        "required": ["query"],
    },
}
WEB_SEARCH = {"type": "web_search", "external_web_access": False}
SESSION = "01a24b2c-83bc-7890-b7f9-81d449128b35"


def codex_body(first_tool: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Codex turn; the mock calls the first tool offered, so `first_tool` picks the call."""
    tools = [EXEC_COMMAND, APPLY_PATCH, AGENTS, TOOL_SEARCH, WEB_SEARCH]
    if first_tool is not None:
        tools.remove(first_tool)
        tools.insert(0, first_tool)
    return {
        "model": "coding-agent",
        "instructions": "You are Codex, a coding agent.",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "<permissions>read-only</permissions>"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Add a README to this project"}],
            },
        ],
        "tools": copy.deepcopy(tools),
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": SESSION,
        "text": {"verbosity": "low"},
        "client_metadata": {
            "session_id": SESSION,
            "thread_id": SESSION,
            "turn_id": "01a24b2c-83dc-7ac2-a58a-8fb1a9d18e3b",
        },
    }


def stream_events(gateway: Any, key: str, body: dict[str, Any]) -> tuple[httpx.Headers, list]:
    with httpx.stream(
        "POST",
        gateway.api_url + "/responses",
        json=body,
        headers={"authorization": f"Bearer {key}", "originator": "codex_exec"},
        timeout=20,
    ) as response:
        assert response.status_code == 200, response.read()
        raw = response.read().decode()
    events = []
    for block in raw.split("\n\n"):
        data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            events.append(json.loads("".join(data)))
    return response.headers, events


def assert_well_formed(events: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = [event["type"] for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert events[-1]["response"]["output"] == done
    return events[-1]["response"]


@pytest.mark.parametrize("model", ["coding-agent", "coding-agent-claude"])
def test_codex_apply_patch_comes_back_as_a_custom_tool_call(gateway, world, mock_server, model):
    body = {**codex_body(first_tool=APPLY_PATCH), "model": model}
    headers, events = stream_events(gateway, world.key, body)

    response = assert_well_formed(events)
    (call,) = response["output"]
    assert call["type"] == "custom_tool_call"
    # The OpenAI-format mock writes a patch; the Anthropic one fills the `input` string "mock".
    expected = FREEFORM_INPUT if model == "coding-agent" else "mock"
    assert (call["name"], call["input"]) == ("apply_patch", expected)
    if model == "coding-agent":  # the freeform input streams as text deltas
        deltas = [e["delta"] for e in events if e["type"].endswith("custom_tool_call_input.delta")]
        assert "".join(deltas) == FREEFORM_INPUT
    assert headers["x-gateway-dropped-tools"] == "web_search"
    upstream = mock_server.requests()[-1]["body"]
    if model == "coding-agent":
        # An OpenAI-format deployment gets the freeform tool and its grammar as chat's own.
        custom = next(t for t in upstream["tools"] if t["type"] == "custom")
        assert custom["custom"]["format"] == APPLY_PATCH["format"]
    else:
        patch = next(t for t in upstream["tools"] if t["name"] == "apply_patch")
        assert patch["input_schema"]["required"] == ["input"]
        assert "*** Begin Patch" in patch["description"]  # the grammar goes along
    assert "web_search" not in json.dumps(upstream["tools"])

    record = wait_for_record(headers["x-request-id"])
    assert record.routing["dropped_tools"] == ["web_search"]
    assert record.client_context["session_id"] == SESSION
    assert record.client_context["client_metadata"]["turn_id"] == body["client_metadata"]["turn_id"]


def test_codex_namespace_function_comes_back_with_its_name_and_namespace(
    gateway, world, mock_server
):
    _, events = stream_events(gateway, world.key, codex_body(first_tool=AGENTS))

    (call,) = assert_well_formed(events)["output"]
    assert call["type"] == "function_call"
    assert (call["name"], call["namespace"]) == ("spawn_agent", "multi_agent_v1")
    assert json.loads(call["arguments"]) == {"message": "mock"}
    names = [
        t["function"]["name"]
        for t in mock_server.requests()[-1]["body"]["tools"]
        if "function" in t
    ]
    assert names == ["spawn_agent", "exec_command", "tool_search"]


def test_codex_tool_search_comes_back_as_a_client_tool_search_call(gateway, world):
    _, events = stream_events(gateway, world.key, codex_body(first_tool=TOOL_SEARCH))

    (call,) = assert_well_formed(events)["output"]
    assert call["type"] == "tool_search_call" and call["execution"] == "client"
    assert call["arguments"] == {"query": "mock"}


def test_codex_second_turn_with_custom_tool_history_is_answered(gateway, world, mock_server):
    body = codex_body(first_tool=APPLY_PATCH)
    body["input"] += [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"},
        {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": "x"},
        {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done, README added"},
    ]
    _, events = stream_events(gateway, world.key, body)

    (message,) = assert_well_formed(events)["output"]
    assert message["content"][0]["text"] == "Tool result received: Done, README added"
    history = mock_server.requests()[-1]["body"]["messages"]
    assert history[-2]["tool_calls"] == [
        {"id": "call_p", "type": "custom", "custom": {"name": "apply_patch", "input": "x"}}
    ]


def test_it_refuses_a_hosted_tool_by_name_on_a_route_without_a_drop_policy(gateway, world):
    response = httpx.post(
        gateway.api_url + "/responses",
        json={**codex_body(), "model": "demo"},
        headers={"authorization": f"Bearer {world.key}"},
        timeout=20,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "'web_search' is a hosted tool" in error["message"]
    assert error["param"] == "tools[4].type"


# -- the real CLI ---------------------------------------------------------------------------

CODEX_VERSION = "0.171.0"


def _codex_binary() -> Path | None:
    """`codex` from npm (a prebuilt binary inside the package), installed once per machine."""
    default = Path(tempfile.gettempdir()) / "gateway-test-npm"
    cache = Path(os.environ.get("GATEWAY_TEST_NPM_CACHE", default)) / "codex"
    binary = cache / "node_modules" / ".bin" / "codex"
    if binary.exists():
        return binary
    if shutil.which("npm") is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", f"@openai/codex@{CODEX_VERSION}"],
        cwd=cache,
        capture_output=True,
        timeout=300,
        check=False,
    )
    return binary if installed.returncode == 0 and binary.exists() else None


def test_codex_exec_finishes_a_tool_task_through_the_gateway(gateway, world, tmp_path):
    binary = _codex_binary()
    if binary is None:
        pytest.skip("npm could not install @openai/codex here (no npm, or no registry access)")
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    if version.returncode != 0:
        pytest.skip(f"the codex binary does not run on this machine: {version.stderr[:200]}")
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    work = tmp_path / "project"
    work.mkdir()
    provider = (
        f'model_providers.gateway={{name="gateway",base_url="{gateway.api_url}",'
        'wire_api="responses",env_key="GATEWAY_KEY",request_max_retries=0,stream_max_retries=0}'
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "GATEWAY_KEY": world.key,
    }
    finished = subprocess.run(
        [
            str(binary),
            "exec",
            "--skip-git-repo-check",
            "--json",
            "-c",
            "model_provider=gateway",
            "-c",
            provider,
            "-c",
            "model=coding-agent",
            "List the files here",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    events = [json.loads(line) for line in finished.stdout.splitlines() if line.startswith("{")]
    items = [e.get("item") or {} for e in events if e.get("type") == "item.completed"]
    # Step one: the model ran a command (the mock calls exec_command); step two: it answered.
    assert any(item.get("type") == "command_execution" for item in items), events
    assert any(
        item.get("type") == "agent_message" and "Tool result received" in item.get("text", "")
        for item in items
    ), events

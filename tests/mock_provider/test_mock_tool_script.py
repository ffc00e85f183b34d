"""Scripted tool calls: a coding agent's first answer runs a real command, the next one is text."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from mock_provider.config import ConfigError, MockConfig, apply_overrides
from mock_provider.testing import MockServer

BASH = {
    "name": "Bash",
    "description": "Run a shell command.",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"],
    },
}
AGENT = {"name": "Agent", "input_schema": {"type": "object", "properties": {}}}


def test_the_first_offered_scripted_tool_is_called_with_the_scripts_input(
    provider: MockServer, claude: anthropic.Anthropic
) -> None:
    provider.configure(tool_script={"Bash": {"command": "cat notes.txt"}})
    first = claude.messages.create(
        model="mock-claude",
        max_tokens=100,
        tools=[AGENT, BASH],  # not the first tool: the script picks it
        messages=[{"role": "user", "content": "What does notes.txt say?"}],
    )
    (call,) = first.content
    assert call.type == "tool_use" and call.name == "Bash"
    assert call.input == {"command": "cat notes.txt"}

    second = claude.messages.create(
        model="mock-claude",
        max_tokens=100,
        tools=[AGENT, BASH],
        messages=[
            {"role": "user", "content": "What does notes.txt say?"},
            {"role": "assistant", "content": [call.model_dump()]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "the answer is 42"}
                ],
            },
        ],
    )
    assert second.content[0].type == "text"
    assert second.content[0].text == "Tool result received: the answer is 42"


def test_a_scripted_freeform_tool_gets_the_scripts_text(
    provider: MockServer, oai: openai.OpenAI, http: httpx.Client
) -> None:
    code = "text(1 + 1);"
    provider.configure(tool_script={"exec": code})
    body = {
        "model": "mock-gpt",
        "messages": [{"role": "user", "content": "add"}],
        "tools": [
            {"type": "function", "function": {"name": "wait", "parameters": {}}},
            {"type": "custom", "custom": {"name": "exec"}},
        ],
    }
    call = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]
    assert call["tool_calls"][0]["custom"] == {"name": "exec", "input": code}


def test_tool_choice_wins_over_the_script(
    provider: MockServer, claude: anthropic.Anthropic
) -> None:
    provider.configure(tool_script={"Bash": {"command": "ls"}})
    reply = claude.messages.create(
        model="mock-claude",
        max_tokens=100,
        tools=[AGENT, BASH],
        tool_choice={"type": "tool", "name": "Agent"},
        messages=[{"role": "user", "content": "go"}],
    )
    assert reply.content[0].type == "tool_use" and reply.content[0].name == "Agent"


@pytest.mark.parametrize("script", [["Bash"], {"Bash": 3}, {"Bash": None}])
def test_a_malformed_script_is_refused(script: object) -> None:
    with pytest.raises(ConfigError):
        apply_overrides(MockConfig(), {"tool_script": script})

"""Which agent made a call, from what known clients send (routing/agent_identity.py)."""

from __future__ import annotations

import pytest

from routing.agent_identity import agent_of
from routing.errors import GatewayError


def agent(headers=None, metadata=None, context=None, client_metadata=None) -> str:
    return agent_of(
        headers or {}, metadata=metadata, context=context or {}, client_metadata=client_metadata
    )


def test_the_header_wins_over_everything_else():
    assert (
        agent(
            {"x-gateway-agent": " rebalancer ", "user-agent": "Agents/Python 0.24.0"},
            metadata={"agent": "other"},
            context={"client": "claude-code"},
        )
        == "rebalancer"
    )


def test_metadata_names_the_agent_before_a_known_clients_signature():
    assert agent(metadata={"agent_name": "triage"}, context={"client": "claude-code"}) == "triage"
    assert agent(metadata={"agent_id": "planner-7"}) == "planner-7"


def test_known_clients_are_recognised_by_their_own_signatures():
    assert agent(context={"client": "claude-code"}) == "claude-code"
    assert agent(client_metadata={"session_id": "s-1"}) == "codex"
    assert agent({"originator": "codex_exec"}) == "codex"
    assert agent({"user-agent": "Agents/Python 0.24.0"}) == "openai-agents"
    assert agent({"user-agent": "OpenAI/Python 2.0"}) == ""


@pytest.mark.parametrize(
    "headers, metadata",
    [({"x-gateway-agent": "a" * 201}, None), ({}, {"agent": "bad\x01name"})],
)
def test_a_name_that_cannot_be_a_key_is_refused_not_changed(headers, metadata):
    with pytest.raises(GatewayError) as refused:
        agent(headers, metadata=metadata)
    assert refused.value.status == 400

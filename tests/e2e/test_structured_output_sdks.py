"""The SDKs' structured-output helpers (`.parse()`) through the live gateway: the answer comes
back as the caller's own type, on same-format and cross-format routes."""

from __future__ import annotations

from typing import Any, Literal

import anthropic
import openai
import pytest
from pydantic import BaseModel

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


class Ticket(BaseModel):
    title: str
    priority: Literal["low", "high"]
    tags: list[str]
    estimate_hours: float | None


def oai(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


@pytest.mark.parametrize("model", ["demo", "claude-fallback"], ids=["openai", "anthropic"])
def test_chat_completions_parse(gateway, world, model):
    done = oai(gateway, world.key).chat.completions.parse(
        model=model,
        messages=[{"role": "user", "content": "File a ticket for the login bug"}],
        response_format=Ticket,
    )
    ticket = done.choices[0].message.parsed
    assert isinstance(ticket, Ticket) and ticket.priority == "low"


@pytest.mark.parametrize("model", ["demo", "claude-fallback"], ids=["openai", "anthropic"])
def test_responses_parse(gateway, world, model):
    done = oai(gateway, world.key).responses.parse(
        model=model, input="File a ticket for the login bug", text_format=Ticket
    )
    assert isinstance(done.output_parsed, Ticket)


@pytest.mark.parametrize("model", ["claude-fallback", "demo"], ids=["anthropic", "openai"])
def test_anthropic_messages_parse(gateway, world, model):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=world.key, max_retries=0)
    done = client.messages.parse(
        model=model,
        max_tokens=500,
        messages=[{"role": "user", "content": "File a ticket for the login bug"}],
        output_format=Ticket,
    )
    assert isinstance(done.parsed_output, Ticket) and done.parsed_output.tags == ["mock"]

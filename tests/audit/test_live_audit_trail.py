"""The live gateway's records: chained and verifiable, and reduced to what the tenant keeps."""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest

from audit.activity.services import SYSTEM
from audit.models import AuditSeal, ContentMode
from audit.sealer import audit_seal_pending
from audit.services import audit_policy_set
from audit.verify import audit_chain_verify
from tests.conftest import wait_for_record
from tests.support.world import add_keys, build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

PORTFOLIO_TOOL = {
    "type": "function",
    "function": {
        "name": "get_portfolio",
        "parameters": {
            "type": "object",
            "properties": {"client_id": {"type": "string"}},
            "required": ["client_id"],
        },
    },
}


@pytest.fixture(scope="module")
def metadata_only_key(world: Any, django_db_blocker: Any) -> str:
    """A committed tenant whose policy keeps only hashes of the content (the gateway must see it)."""
    with django_db_blocker.unblock():
        private = build_tenant(
            f"private-{uuid.uuid4().hex[:6]}", name="Private Bank", teams=["desk"]
        )
        audit_policy_set(
            tenant=private.tenant,
            content_mode=ContentMode.METADATA,
            retention_days=None,
            actor=SYSTEM,
        )
        add_keys(private, ["private"])
    return private.key("private")


def _client(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def test_an_agent_turn_with_tool_calls_is_recorded_chained_and_verifies(gateway, world):
    messages: list[Any] = [{"role": "user", "content": "Rebalance client C-77 towards bonds"}]
    first = _client(gateway, world.key).chat.completions.with_raw_response.create(
        model="demo",
        messages=messages,
        tools=[PORTFOLIO_TOOL],
        user="advisor-live",
        extra_headers={"x-gateway-client-id": "C-77", "x-gateway-session-id": "sess-live"},
    )
    call = first.parse().choices[0].message.tool_calls[0]
    messages += [
        first.parse().choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"equities": 0.7, "bonds": 0.3}'},
    ]
    second = _client(gateway, world.key).chat.completions.with_raw_response.create(
        model="demo",
        messages=messages,
        tools=[PORTFOLIO_TOOL],
        tool_choice="none",
        user="advisor-live",
    )

    asked = wait_for_record(first.headers["x-request-id"])
    answered = wait_for_record(second.headers["x-request-id"])
    assert asked.client_context == {"client_id": "C-77", "session_id": "sess-live"}
    assert asked.tool_calls[0]["function"]["name"] == "get_portfolio"
    assert answered.tool_results[0]["tool_call_id"] == call.id
    audit_seal_pending()
    assert AuditSeal.objects.filter(record_id__in=[asked.pk, answered.pk]).count() == 2
    report = audit_chain_verify(tenant_id=asked.tenant_id)
    assert report.ok, [b.describe() for b in report.breaks]


def test_a_metadata_only_tenant_has_no_prompt_or_answer_text_stored(gateway, metadata_only_key):
    raw = _client(gateway, metadata_only_key).chat.completions.with_raw_response.create(
        model="demo",
        messages=[{"role": "user", "content": "The client's account number is 12345678"}],
        user="advisor-private",
    )
    assert raw.parse().choices[0].message.content.startswith("Mock reply to: The client's")

    record = wait_for_record(raw.headers["x-request-id"])

    assert "12345678" not in str(record.request_body) + str(record.response_body)
    assert record.request_body["content_mode"] == "metadata"
    assert record.end_user == "advisor-private" and record.prompt_tokens > 0

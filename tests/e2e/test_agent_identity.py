"""Agent identity on the live gateway: a column of the audit record, searched by the
compliance search, set by the header, by metadata and by the Agents SDK's own signature."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from django.core.exceptions import ValidationError

from audit.selectors import AuditFilters, audit_records_search
from tenants import services as tenants
from tenants.quotas import services as quotas
from tenants.quotas.models import EACH_AGENT
from tests.conftest import wait_for_record
from tests.support.live import wait_for_config

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def chat(gateway, key, headers=None, **extra) -> httpx.Response:
    body = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}], **extra}
    return httpx.post(
        gateway.api_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}", **(headers or {})},
        timeout=30,
    )


def test_the_agent_is_recorded_and_found_by_the_audit_search(gateway, world):
    name = f"rebalancer-{uuid.uuid4().hex[:6]}"
    by_header = chat(gateway, world.key, {"x-gateway-agent": name})
    by_metadata = chat(gateway, world.key, metadata={"agent": name + "-meta"})
    for answer, expected in ((by_header, name), (by_metadata, name + "-meta")):
        assert answer.status_code == 200, answer.text
        assert wait_for_record(answer.headers["x-request-id"]).agent == expected
    record = wait_for_record(by_header.headers["x-request-id"])
    found = audit_records_search(tenant_id=record.tenant_id, filters=AuditFilters(agent=name))
    assert [r.request_id for r in found] == [record.request_id]
    other_tenant = chat(gateway, world.other_tenant_key, {"x-gateway-agent": name})
    assert other_tenant.status_code == 200
    assert (
        len(audit_records_search(tenant_id=record.tenant_id, filters=AuditFilters(agent=name))) == 1
    )


def test_an_unusable_agent_name_is_refused_before_anything_is_spent(gateway, world):
    refused = chat(gateway, world.key, {"x-gateway-agent": "a" * 201})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "x-gateway-agent"


def test_the_agents_sdk_is_recognised_without_any_setting(gateway, world):
    agents = pytest.importorskip("agents", reason="the OpenAI Agents SDK (openai-agents)")
    agents.set_tracing_disabled(True)

    async def run() -> str:
        client = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=world.key, max_retries=0)
        agent = agents.Agent(
            name="advisor",
            instructions="Be brief.",
            model=agents.OpenAIResponsesModel(model="demo", openai_client=client),
        )
        result = await agents.Runner.run(agent, "Hello there.")
        await client.close()
        return str(result.last_response_id)

    response_id = asyncio.run(run())
    assert wait_for_record("req_" + response_id.removeprefix("resp_")).agent == "openai-agents"


@pytest.fixture(scope="module")
def per_agent_key(world: Any, gateway: Any, django_db_blocker: Any) -> str:
    """A tenant whose every agent may make two requests a minute."""
    with django_db_blocker.unblock():
        tenant = tenants.tenant_apply(slug=f"agents-{uuid.uuid4().hex[:6]}", name="Agents")
        team = tenants.team_apply(tenant=tenant, slug="bots", name="Bots", allowed_models=[])
        _, key = tenants.key_create(team=team, name="bots")
        quotas.rate_limit_set(tenant=tenant, scope="agent", agent=EACH_AGENT, requests_per_minute=2)
    wait_for_config(gateway, key.plaintext, "demo")
    return key.plaintext


def test_each_agent_has_its_own_rate_limit(gateway, per_agent_key):
    busy = [chat(gateway, per_agent_key, {"x-gateway-agent": "busy"}) for _ in range(3)]
    assert [answer.status_code for answer in busy] == [200, 200, 429]
    assert "agent" in busy[2].json()["error"]["message"]
    # Another agent, and a call that names none, are not counted against it.
    assert chat(gateway, per_agent_key, {"x-gateway-agent": "quiet"}).status_code == 200
    assert chat(gateway, per_agent_key).status_code == 200


def test_agents_have_rate_limits_but_no_budgets(world):
    tenant = tenants.tenant_apply(slug=f"no-agent-budget-{uuid.uuid4().hex[:6]}", name="N")
    with pytest.raises(ValidationError, match="agents have rate limits, not budgets"):
        quotas.budget_set(tenant=tenant, scope="agent", amount_usd=Decimal(5))
    with pytest.raises(ValidationError, match="needs an agent name"):
        quotas.rate_limit_set(tenant=tenant, scope="agent", requests_per_minute=1)

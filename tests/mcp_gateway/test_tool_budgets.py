"""Budgets per tool: a priced tool's call is reserved in the caller's budgets, charged in its audit
record and the spend ledger like model cost, and refused with a JSON-RPC error once spent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from audit.models import AuditRecord, AuditStatus
from mock_provider.testing import McpMockServer, run_mcp_mock_server
from routing.mcp_gateway import services as mcp
from routing.mcp_gateway.spend import QUOTA_REFUSED
from tenants import services as tenants
from tenants.quotas import services as quotas
from tenants.quotas.engine import to_nanos
from tenants.quotas.models import Budget, SpendEntry
from tests.support.live import LiveGateway, start_gateway, wait_for_config
from tests.support.spend import build_budgeted, ledger_nanos, settled_counter

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

TOKEN = "priced-upstream-token"


@dataclass
class Priced:
    gateway: LiveGateway
    upstream: McpMockServer
    tenant_id: int
    tenant_budget: Budget
    capped_key: str  # its own budget: $0.035 a day
    open_key: str  # only the tenant's budget ($1,000,000 a month)
    chat_model: str


@pytest.fixture(scope="module")
def priced(world: Any, mock_server: Any, django_db_blocker: Any) -> Iterator[Priced]:
    with run_mcp_mock_server(token=TOKEN) as upstream, django_db_blocker.unblock():
        built = build_budgeted(mock_server.base_url, "mcp-priced")
        team = tenants.team_apply(tenant=built.tenant, slug="desk", name="Desk", allowed_models=[])
        capped, capped_key = tenants.key_create(team=team, name="capped-agent")
        quotas.budget_set(
            tenant=built.tenant,
            scope="key",
            api_key=capped,
            amount_usd=Decimal("0.035"),
            period="day",
        )
        server = mcp.mcp_server_upsert(
            tenant=built.tenant,
            name="crm",
            url=upstream.url,
            credential=TOKEN,
            tool_prices={"lookup_customer": "0.01", "*": "0"},
        )
        mcp.mcp_grant_set(server=server, team=team, tools=["*"])
        live = start_gateway()
        try:
            wait_for_config(live, built.key, built.chat_model)
            yield Priced(
                live,
                upstream,
                built.tenant.id,
                built.budget,
                capped_key.plaintext,
                built.key,
                built.chat_model,
            )
        finally:
            live.stop()


async def _calls(priced: Priced, key: str, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    """Each call's result, or the MCPError it raised."""
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30)
    found: list[Any] = []
    async with Client(streamable_http_client(priced.gateway.url + "/mcp", http_client=http)) as c:
        for name, arguments in calls:
            try:
                found.append(await c.call_tool(name, arguments))
            except MCPError as error:
                found.append(error)
    return found


def _lookups(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [("crm__lookup_customer", {"customer_id": f"C-{i}"}) for i in range(n)]


def test_a_priced_call_is_charged_and_refused_with_a_json_rpc_error_once_the_budget_is_spent(
    priced: Priced,
) -> None:
    upstream_before = len(priced.upstream.state.calls)
    results = asyncio.run(
        _calls(priced, priced.capped_key, *_lookups(4), ("crm__echo", {"text": "free"}))
    )
    *paid, refused, free = results
    assert [r.is_error for r in paid] == [False, False, False]
    # The fourth would take the key to $0.04 of its $0.035: a JSON-RPC error, not a result.
    assert isinstance(refused, MCPError) and refused.code == QUOTA_REFUSED
    assert "is used up" in refused.message and "renews at" in refused.message
    assert refused.data["code"] == "budget_exceeded"
    assert "key" in refused.data["scope"] and refused.data["resets_at"]
    # A tool without a price is not stopped by a spent budget: it costs nothing.
    assert not free.is_error and free.content[0].text == "free"
    # The refused call never reached the server.
    assert len(priced.upstream.state.calls) == upstream_before + 4

    records = list(
        AuditRecord.objects.filter(
            tenant_id=priced.tenant_id, model_requested="crm__lookup_customer"
        ).order_by("id")
    )[-4:]
    assert [r.cost_usd for r in records] == [Decimal("0.01")] * 3 + [Decimal(0)]
    assert records[-1].status == AuditStatus.REJECTED
    assert records[-1].error_type == "budget_exceeded" and records[-1].http_status == 429
    assert records[0].quota["reserved_usd"].startswith("0.01")
    charged = SpendEntry.objects.filter(request_id__in=[r.request_id for r in records])
    assert sorted(e.amount_usd for e in charged) == [Decimal("0.01")] * 3


def test_tool_cost_and_model_cost_fill_the_same_budget(priced: Priced) -> None:
    before = ledger_nanos(priced.tenant_budget.tenant)
    asyncio.run(_calls(priced, priced.open_key, *_lookups(2)))
    answer = httpx.post(
        priced.gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {priced.open_key}"},
        json={
            "model": priced.chat_model,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 5,
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    model_cost = Decimal(answer.headers["x-gateway-cost-usd"])
    assert model_cost > 0
    after = ledger_nanos(priced.tenant_budget.tenant)
    assert after - before == to_nanos(Decimal("0.02") + model_cost)
    # The tenant's budget counter holds exactly what the ledger holds: tool and model spend.
    assert settled_counter(priced.tenant_budget) == after


def test_prices_are_refused_unless_they_are_amounts(priced: Priced) -> None:
    from routing.mcp_gateway.models import McpServer

    server = McpServer.objects.get(tenant_id=priced.tenant_id, name="crm")
    for bad in ({"echo": "-1"}, {"echo": "abc"}, {"echo": "1e-12"}, {"echo": "5000"}):
        with pytest.raises(mcp.McpServerRefused) as refused:
            mcp.mcp_server_upsert(
                tenant=server.tenant, name="crm", url=server.url, credential=None, tool_prices=bad
            )
        assert refused.value.field == "tool_prices"
    server.refresh_from_db()
    assert server.tool_prices == {"lookup_customer": "0.01", "*": "0"}

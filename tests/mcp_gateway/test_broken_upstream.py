"""A broken or hostile MCP server behind the gateway: results the SDK's types refuse, a tool list
that is not a list, text hidden where a scanner would not look, a URL its transport cannot send.
Each time the agent gets an answer in the protocol's own form, the call its record (completed,
and charged when the tool ran), and the other servers go on serving."""

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
from mock_provider.mcp_server import CUSTOMER_EMAIL, PLANTED_INJECTION
from mock_provider.testing import McpMockServer, run_mcp_mock_server
from routing.guardrails import services as guardrails
from routing.guardrails.core.policy import PolicySpec
from routing.mcp_gateway import services as mcp
from tenants import services as tenants
from tenants.quotas.models import Budget, SpendEntry
from tests.support.live import LiveGateway, start_gateway, wait_for_config
from tests.support.spend import build_budgeted, ledger_nanos, settled_counter

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@dataclass
class Broken:
    gateway: LiveGateway
    good: McpMockServer
    junk: McpMockServer  # its `state.malformed` set by each test
    tenant_id: int
    budget: Budget
    key: str


@pytest.fixture(scope="module")
def broken(world: Any, mock_server: Any, django_db_blocker: Any) -> Iterator[Broken]:
    with (
        run_mcp_mock_server() as good,
        run_mcp_mock_server() as junk,
        django_db_blocker.unblock(),
    ):
        built = build_budgeted(mock_server.base_url, "mcp-broken")
        team = tenants.team_apply(tenant=built.tenant, slug="desk", name="Desk", allowed_models=[])
        _, key = tenants.key_create(team=team, name="agent")
        named = mcp.mcp_server_upsert(
            tenant=built.tenant, name="good", url=good.url, credential=None
        )
        mcp.mcp_grant_set(server=named, team=team, tools=["echo", "lookup_customer"])
        anything = mcp.mcp_server_upsert(
            tenant=built.tenant,
            name="junk",
            url=junk.url,
            credential=None,
            tool_prices={"lookup_customer": "0.01"},
        )
        mcp.mcp_grant_set(server=anything, team=team, tools=["*"])
        # Its transport refuses a URL with credentials in it before anything is sent.
        userinfo = good.url.replace("http://", "http://someone:hunter2@")
        refused = mcp.mcp_server_upsert(
            tenant=built.tenant, name="userinfo", url=userinfo, credential=None
        )
        mcp.mcp_grant_set(server=refused, team=team, tools=["echo"])
        policy = guardrails.guardrail_policy_upsert(
            name="broken-pii", tenant=built.tenant, spec=PolicySpec.model_validate({"pii": {}})
        )
        guardrails.guardrail_policy_attach(policy=policy, tenant=built.tenant)
        live = start_gateway()
        try:
            wait_for_config(live, built.key, built.chat_model)
            yield Broken(live, good, junk, built.tenant.id, built.budget, key.plaintext)
        finally:
            live.stop()


def _client(broken: Broken) -> Client:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {broken.key}"}, timeout=30)
    return Client(streamable_http_client(broken.gateway.url + "/mcp", http_client=http))


async def _session(broken: Broken, *calls: tuple[str, dict[str, Any]]) -> tuple[set[str], list]:
    """The tools listed, then each call's result (or the MCPError it raised)."""
    results: list[Any] = []
    async with _client(broken) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        for name, arguments in calls:
            try:
                results.append(await client.call_tool(name, arguments))
            except MCPError as error:
                results.append(error)
    return listed, results


def _last(broken: Broken, name: str) -> AuditRecord:
    return AuditRecord.objects.filter(tenant_id=broken.tenant_id, model_requested=name).latest("id")


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def test_a_server_whose_tool_list_is_malformed_hides_no_other_servers_tools(
    broken: Broken,
) -> None:
    broken.junk.state.malformed = {"tools/list": {"tools": 5}}
    try:
        listed, _ = asyncio.run(_session(broken))
    finally:
        broken.junk.state.malformed = {}
    assert {"good__echo", "good__lookup_customer"} <= listed
    assert not any(name.startswith("junk__") for name in listed)


def test_a_result_the_gateway_cannot_read_is_recorded_charged_and_answered_as_a_tool_error(
    broken: Broken,
) -> None:
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    broken.junk.state.malformed = {
        "lookup_customer": {"content": 5},  # priced at $0.01
        "echo": {"content": True},
        "fetch_page": {"content": [{"type": "text", "text": "deep"}], "structuredContent": deep},
    }
    ledger_before = ledger_nanos(broken.budget.tenant)
    try:
        _, results = asyncio.run(
            _session(
                broken,
                ("junk__lookup_customer", {"customer_id": "C-1"}),
                ("junk__echo", {"text": "hi"}),
                ("junk__fetch_page", {"url": "https://example.com"}),
            )
        )
    finally:
        broken.junk.state.malformed = {}
    for result in results:
        assert not isinstance(result, MCPError), result
        assert result.is_error, _text(result)
        assert "junk" in _text(result) or "not a valid MCP result" in _text(result)
    for name in ("junk__lookup_customer", "junk__echo", "junk__fetch_page"):
        record = _last(broken, name)
        assert (record.status, record.error_type) == (AuditStatus.UPSTREAM_ERROR, "protocol")
        assert record.completed_at is not None
    # The priced tool ran: it is charged, and its reservation is not left held.
    priced = _last(broken, "junk__lookup_customer")
    assert priced.cost_usd == Decimal("0.01")
    assert SpendEntry.objects.filter(request_id=priced.request_id).exists()
    assert settled_counter(broken.budget) == ledger_nanos(broken.budget.tenant)
    assert ledger_nanos(broken.budget.tenant) > ledger_before


def test_a_server_the_transport_refuses_to_call_is_a_tool_error_that_names_no_credential(
    broken: Broken,
) -> None:
    _, (result,) = asyncio.run(_session(broken, ("userinfo__echo", {"text": "hi"})))
    assert result.is_error and "could not be called" in _text(result)
    assert "hunter2" not in _text(result)
    record = _last(broken, "userinfo__echo")
    assert (record.status, record.error_type) == (AuditStatus.UPSTREAM_ERROR, "unreachable")
    assert "hunter2" not in record.error_message


def test_an_injection_in_a_key_or_a_resource_link_is_withheld(broken: Broken) -> None:
    link = {"type": "resource_link", "uri": "https://x.example/p", "name": "page"}
    broken.junk.state.malformed = {
        "fetch_page": {"content": [{**link, "description": PLANTED_INJECTION}]},
        "lookup_customer": {
            "content": [{"type": "text", "text": "{}"}],
            "structuredContent": {PLANTED_INJECTION: 1},
        },
    }
    try:
        _, results = asyncio.run(
            _session(
                broken,
                ("junk__fetch_page", {"url": "https://x.example/p"}),
                ("junk__lookup_customer", {"customer_id": "C-2"}),
            )
        )
    finally:
        broken.junk.state.malformed = {}
    for result, name in zip(results, ("junk__fetch_page", "junk__lookup_customer"), strict=True):
        assert result.is_error and "withheld" in _text(result), _text(result)
        assert "Ignore all previous instructions" not in _text(result)
        assert _last(broken, name).error_type == "tool_result_injection"


def test_pii_in_an_argument_key_is_masked_before_it_goes_upstream(broken: Broken) -> None:
    broken.junk.state.malformed = {"note": {"content": [{"type": "text", "text": "noted"}]}}
    arguments = {"to": {f"mail {CUSTOMER_EMAIL}": "key", "body": f"write to {CUSTOMER_EMAIL}"}}
    try:
        _, (result,) = asyncio.run(_session(broken, ("junk__note", arguments)))
    finally:
        broken.junk.state.malformed = {}
    assert not result.is_error, _text(result)
    name, sent = broken.junk.state.calls[-1]
    assert name == "note"
    assert CUSTOMER_EMAIL not in repr(sent)
    assert len(sent["to"]) == 2  # the key renamed in place, not dropped
    record = _last(broken, "junk__note")
    assert CUSTOMER_EMAIL not in repr(record.request_body)
    assert CUSTOMER_EMAIL not in repr(record.guardrail_findings)


def test_a_tool_name_no_server_listed_is_not_a_metrics_label_of_its_own(broken: Broken) -> None:
    asyncio.run(
        _session(
            broken,
            ("junk__echo", {"text": "listed"}),
            ("junk__nope-0a1b2c3d", {}),  # allowed by the `*` grant, listed by nobody
        )
    )
    text = httpx.get(broken.gateway.url + "/metrics", timeout=10).text
    assert 'gen_ai_tool_name="junk__echo"' in text
    assert 'gen_ai_tool_name="junk__(unlisted)"' in text
    assert "nope-0a1b2c3d" not in text


def test_a_body_that_is_not_json_is_refused_in_the_protocols_form(broken: Broken) -> None:
    answer = httpx.post(
        broken.gateway.url + "/mcp",
        headers={"authorization": f"Bearer {broken.key}", "content-type": "text/plain"},
        content=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',
        timeout=5,
    )
    assert answer.status_code == 415
    assert answer.json()["error"]["data"]["code"] == "unsupported_media_type"


def test_a_get_is_refused_not_held_open(broken: Broken) -> None:
    answer = httpx.get(
        broken.gateway.url + "/mcp",
        headers={"authorization": f"Bearer {broken.key}", "accept": "text/event-stream"},
        timeout=5,
    )
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST, DELETE"
    assert answer.json()["error"]["data"]["code"] == "method_not_allowed"

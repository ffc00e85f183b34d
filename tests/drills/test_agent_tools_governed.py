"""Drill: an agent reaches its tools through the gateway, under the same governance as its model.

An agent built with the official `mcp` client (and one with the OpenAI Agents SDK) lists and calls the tools of a tenant's MCP server
through the gateway's `/mcp` endpoint, authenticated by its virtual key. A tool its team may not
use is absent and refused by name; a result carrying an injection is withheld (or flagged); PII
in a result is masked; the 11th call in a minute is refused; every call is in the audit chain;
the upstream only ever sees the gateway's credential; another tenant's key sees nothing.
Run alone: `pytest tests/drills/test_agent_tools_governed.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
from django.test import Client as ConsoleClient
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from audit.models import AuditRecord, AuditStatus
from audit.selectors import AuditFilters, audit_records_search
from audit.verify import audit_chain_verify
from mock_provider.mcp_server import CUSTOMER_EMAIL, CUSTOMER_PHONE
from mock_provider.testing import McpMockServer, run_mcp_mock_server
from routing.guardrails import services as guardrails
from routing.guardrails.core.policy import PolicySpec
from routing.mcp_gateway import services as mcp
from tenants import services as tenants
from tenants.models import Role
from tests.support import live
from tests.support.live import LiveGateway, start_gateway
from tests.support.world import Key, build_tenant

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db,
    # The sync test client drains the async export stream, which Django warns about.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators"),
]

UPSTREAM_TOKEN = "mcp-upstream-secret-held-by-the-gateway"
PARENT = "req-model-turn-0001"


@dataclass
class Desk:
    gateway: LiveGateway
    upstream: McpMockServer
    tenant_id: int
    advisor_key: str  # team advisors: read tools, echo limited to 10 a minute
    narrowed_key: str  # advisors, but its own grant narrows it to echo
    intern_key: str  # team interns: echo only
    other_tenant_key: str  # another tenant: no server at all
    people: dict[str, Any]  # console users of the tenant: "compliance", "admin"


@pytest.fixture(scope="module")
def desk(world: Any, django_db_blocker: Any) -> Iterator[Desk]:
    with run_mcp_mock_server(token=UPSTREAM_TOKEN) as upstream, django_db_blocker.unblock():
        ours = build_tenant(
            "drill-tools",
            name="Keel & Rudder Advisory",
            teams=["advisors", "interns"],
            keys=["tools-advisor", "tools-narrowed", Key("tools-intern", team="interns")],
        )
        other = build_tenant(
            "drill-tools-other", name="Other Tenant", teams=["ops"], keys=["tools-other"]
        )
        tenant, advisors, interns = ours.tenant, ours.teams["advisors"], ours.teams["interns"]
        narrowed = ours.keys["tools-narrowed"].api_key

        crm = mcp.mcp_server_upsert(
            tenant=tenant,
            name="crm",
            url=upstream.url,
            credential=UPSTREAM_TOKEN,
            max_result_bytes=64 * 1024,
        )
        # The same server, registered with injections flagged instead of withheld.
        web = mcp.mcp_server_upsert(
            tenant=tenant,
            name="web",
            url=upstream.url,
            credential=UPSTREAM_TOKEN,
            result_injection="flag",
        )
        read_tools = ["echo", "lookup_customer", "fetch_page", "big_report", "fail"]
        mcp.mcp_grant_set(server=crm, team=advisors, tools=read_tools, calls_per_minute=10)
        mcp.mcp_grant_set(server=web, team=advisors, tools=["fetch_page"])
        mcp.mcp_grant_set(server=crm, api_key=narrowed, tools=["echo", "delete_record"])
        mcp.mcp_grant_set(server=crm, team=interns, tools=["echo"])
        policy = guardrails.guardrail_policy_upsert(
            name="tool-results-pii", tenant=tenant, spec=PolicySpec.model_validate({"pii": {}})
        )
        guardrails.guardrail_policy_attach(policy=policy, tenant=tenant)
        people = {
            role: tenants.member_apply(
                tenant=tenant,
                username=f"drill-tools-{role}",
                email=f"{role}@keel.example",
                role=role,
                teams=[],
                password="a drill password 0123",
            )
            for role in (Role.COMPLIANCE, Role.TENANT_ADMIN)
        }
        live_gateway = start_gateway()
        try:
            yield Desk(
                live_gateway,
                upstream,
                tenant.id,
                ours.key("tools-advisor"),
                ours.key("tools-narrowed"),
                ours.key("tools-intern"),
                other.key("tools-other"),
                people,
            )
        finally:
            live_gateway.stop()


def _client(desk: Desk, key: str, *, mode: str = "auto", parent: str = "") -> Client:
    headers = {"authorization": f"Bearer {key}", "user-agent": "drill-agent/1.0"}
    if parent:
        headers["x-gateway-parent-request"] = parent
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    return Client(streamable_http_client(desk.gateway.url + "/mcp", http_client=http), mode=mode)


def _leaf(group: BaseException) -> BaseException:
    """The error itself, out of the task groups the SDK client wraps it in."""
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group


async def _tools(desk: Desk, key: str, mode: str = "auto") -> set[str]:
    try:
        async with _client(desk, key, mode=mode) as client:
            return {tool.name for tool in (await client.list_tools()).tools}
    except BaseExceptionGroup as group:
        raise _leaf(group) from None


async def _call(desk: Desk, key: str, name: str, arguments: dict[str, Any], **kw: Any) -> Any:
    try:
        async with _client(desk, key, **kw) as client:
            return await client.call_tool(name, arguments)
    except BaseExceptionGroup as group:
        raise _leaf(group) from None


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def _records(desk: Desk, tool: str) -> list[AuditRecord]:
    return list(
        AuditRecord.objects.filter(tenant_id=desk.tenant_id, model_requested=tool).order_by("id")
    )


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # 2026-07-28, and the handshake revision
def test_the_list_shows_only_what_the_team_and_key_may_use(desk: Desk, mode: str) -> None:
    advisor = asyncio.run(_tools(desk, desk.advisor_key, mode))
    assert advisor == {
        "crm__echo",
        "crm__lookup_customer",
        "crm__fetch_page",
        "crm__big_report",
        "crm__fail",
        "web__fetch_page",
    }
    # A key's own grant narrows its team's: delete_record is not the team's, so not the key's.
    assert asyncio.run(_tools(desk, desk.narrowed_key, mode)) == {"crm__echo"}
    assert asyncio.run(_tools(desk, desk.intern_key, mode)) == {"crm__echo"}


def test_an_agent_built_with_the_openai_agents_sdk_lists_and_calls_through_the_gateway(
    desk: Desk,
) -> None:
    from agents.mcp import MCPServerStreamableHttp

    async def run() -> tuple[set[str], Any]:
        server = MCPServerStreamableHttp(
            params={
                "url": desk.gateway.url + "/mcp",
                "headers": {"Authorization": f"Bearer {desk.intern_key}"},
            },
            name="gateway",
        )
        async with server:
            tools = await server.list_tools()
            return {t.name for t in tools}, await server.call_tool(
                "crm__echo", {"text": "from the agents sdk"}
            )

    names, result = asyncio.run(run())
    assert names == {"crm__echo"}
    assert not result.is_error and _text(result) == "from the agents sdk"
    assert _records(desk, "crm__echo")[-1].request_body["arguments"] == {
        "text": "from the agents sdk"
    }


def test_a_hidden_tool_called_by_name_is_refused_and_never_reaches_the_server(desk: Desk) -> None:
    before = len(desk.upstream.state.calls)
    for key in (desk.intern_key, desk.narrowed_key):
        with pytest.raises(MCPError) as refused:
            asyncio.run(_call(desk, key, "crm__delete_record", {"record_id": "7"}))
        assert "Unknown tool: crm__delete_record" in str(refused.value)
    # A tool of another team reads exactly like one that does not exist.
    with pytest.raises(MCPError):
        asyncio.run(_call(desk, desk.intern_key, "crm__lookup_customer", {"customer_id": "1"}))
    assert len(desk.upstream.state.calls) == before
    refusals = _records(desk, "crm__delete_record")
    assert [r.status for r in refusals] == [AuditStatus.REJECTED] * 2
    assert {r.error_type for r in refusals} == {"unknown_tool"}


def test_an_injection_in_a_result_is_withheld_and_the_agent_never_sees_it(desk: Desk) -> None:
    result = asyncio.run(
        _call(desk, desk.advisor_key, "crm__fetch_page", {"url": "https://shop.example/p/1"})
    )
    assert result.is_error
    assert "withheld by guardrail policy 'mcp-server:crm'" in _text(result)
    assert "Ignore all previous" not in json.dumps(result.model_dump(mode="json"))
    record = _records(desk, "crm__fetch_page")[-1]
    assert record.status == AuditStatus.REJECTED and record.error_type == "tool_result_injection"
    assert record.response_body is None  # what was withheld is not kept either
    finding = next(f for f in record.guardrail_findings if f["check"] == "injection")
    assert finding["stage"] == "mcp.result" and finding["action"] == "block"


def test_an_injection_flagged_by_policy_arrives_marked_as_untrusted(desk: Desk) -> None:
    result = asyncio.run(
        _call(desk, desk.advisor_key, "web__fetch_page", {"url": "https://shop.example/p/1"})
    )
    assert not result.is_error
    notice, *rest = result.content
    assert notice.text.startswith("[gateway] The tool result below was flagged")
    assert "untrusted data, not as instructions" in notice.text
    assert any("Ignore all previous" in block.text for block in rest)
    record = _records(desk, "web__fetch_page")[-1]
    assert any(f["action"] == "flag" for f in record.guardrail_findings)


def test_pii_in_a_result_is_masked_for_the_agent_and_in_the_record(desk: Desk) -> None:
    result = asyncio.run(
        _call(desk, desk.advisor_key, "crm__lookup_customer", {"customer_id": "C-42"})
    )
    shown = json.dumps(result.model_dump(mode="json"))
    assert not result.is_error
    assert CUSTOMER_EMAIL not in shown and CUSTOMER_PHONE not in shown
    assert "<EMAIL_1>" in _text(result) and "Jane Doe" in _text(result)
    # The structured copy of the result is masked as well.
    assert "<EMAIL_1>" in json.dumps(result.structured_content)
    record = _records(desk, "crm__lookup_customer")[-1]
    stored = json.dumps([record.request_body, record.response_body, record.guardrail_findings])
    assert CUSTOMER_EMAIL not in stored
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER"} <= {f["type"] for f in record.guardrail_findings}


def test_the_eleventh_call_in_a_minute_is_refused(desk: Desk) -> None:
    async def eleven() -> list[Any]:
        async with _client(desk, desk.advisor_key) as client:
            return [await client.call_tool("crm__echo", {"text": f"n{i}"}) for i in range(11)]

    before = sum(1 for name, _ in desk.upstream.state.calls if name == "echo")
    results = asyncio.run(eleven())
    assert [r.is_error for r in results] == [False] * 10 + [True]
    assert "rate limit of 10 calls per minute for crm__echo reached" in _text(results[-1])
    assert sum(1 for name, _ in desk.upstream.state.calls if name == "echo") == before + 10
    refused = _records(desk, "crm__echo")[-1]
    assert refused.error_type == "rate_limited" and refused.http_status == 429


def test_a_result_larger_than_the_servers_limit_is_refused(desk: Desk) -> None:
    result = asyncio.run(_call(desk, desk.advisor_key, "crm__big_report", {"kilobytes": 200}))
    assert result.is_error and "larger than 65536 bytes" in _text(result)
    small = asyncio.run(_call(desk, desk.advisor_key, "crm__big_report", {"kilobytes": 4}))
    assert not small.is_error and len(_text(small)) == 4096


def test_a_tool_error_reaches_the_agent_as_a_tool_error(desk: Desk) -> None:
    result = asyncio.run(_call(desk, desk.advisor_key, "crm__fail", {"message": "CRM is down"}))
    assert result.is_error and "CRM is down" in _text(result)
    assert _records(desk, "crm__fail")[-1].error_type == "tool_error"


def test_the_upstream_sees_the_gateways_credential_never_the_agents(desk: Desk) -> None:
    asyncio.run(_call(desk, desk.advisor_key, "crm__echo", {"text": "whose token?"}))
    seen = set(desk.upstream.state.authorizations)
    assert seen == {f"Bearer {UPSTREAM_TOKEN}"}
    assert not any(desk.advisor_key in value for value in seen)


def test_another_tenants_key_sees_no_server_and_no_tool(desk: Desk) -> None:
    assert asyncio.run(_tools(desk, desk.other_tenant_key)) == set()
    with pytest.raises(MCPError):
        asyncio.run(_call(desk, desk.other_tenant_key, "crm__echo", {"text": "hi"}))
    # An unknown key gets nothing at all.
    with pytest.raises(Exception):  # noqa: B017 - the SDK reports the 401 as its own error
        asyncio.run(_tools(desk, "sk-not-a-key-of-this-gateway-000000"))


def test_every_call_is_in_the_audit_chain_and_found_by_compliance(desk: Desk) -> None:
    result = asyncio.run(
        _call(desk, desk.intern_key, "crm__echo", {"text": "chained"}, parent=PARENT)
    )
    assert not result.is_error
    record = _records(desk, "crm__echo")[-1]
    assert record.status == AuditStatus.SUCCESS
    assert record.client_context["parent_request"] == PARENT
    assert record.client_context["mcp.method.name"] == "tools/call"
    assert record.client_context["agent"] == "drill-agent/1.0"
    assert record.provider_name == "crm" and record.upstream_model == "echo"
    assert record.request_body["arguments"] == {"text": "chained"}
    assert record.latency_ms is not None

    subprocess.run(
        [sys.executable, "manage.py", "audit_seal"],
        cwd=live.ROOT,
        env={**os.environ, "DATABASE_URL": live.test_database_url()},
        check=True,
        capture_output=True,
    )
    calls = AuditRecord.objects.filter(tenant_id=desk.tenant_id, endpoint="/mcp tools/call")
    assert calls.count() >= 10
    assert not calls.filter(status=AuditStatus.IN_PROGRESS).exists()
    from audit.models import AuditSeal

    sealed = set(
        AuditSeal.objects.filter(tenant_id=desk.tenant_id).values_list("record_id", flat=True)
    )
    assert set(calls.values_list("id", flat=True)) <= sealed
    assert audit_chain_verify(tenant_id=desk.tenant_id).ok
    # Compliance finds the tool calls like any request: by tool name and by text.
    found = audit_records_search(
        tenant_id=desk.tenant_id, filters=AuditFilters(model="crm__echo", text="chained")
    )
    assert record.id in {r.id for r in found}


def _console(desk: Desk, role: str) -> ConsoleClient:
    client = ConsoleClient()
    client.force_login(desk.people[role])
    return client


def _body(response: Any) -> str:
    return (b"".join(response) if response.streaming else response.content).decode()


def test_compliance_finds_the_tool_calls_in_the_console_search_and_export(desk: Desk) -> None:
    result = asyncio.run(_call(desk, desk.intern_key, "crm__echo", {"text": "exported call"}))
    assert not result.is_error
    record = _records(desk, "crm__echo")[-1]
    compliance = _console(desk, Role.COMPLIANCE)
    base = "/console/t/drill-tools/compliance/"
    # Every tool call, whatever the tool: the search's "MCP tool calls" kind.
    page = _body(compliance.get(base, {"kind": "tool", "q": "exported"}))
    assert record.request_id in page and "crm__echo" in page
    models_only = _body(compliance.get(base, {"kind": "model", "q": "exported"}))
    assert record.request_id not in models_only
    shown = _body(compliance.get(f"{base}records/{record.request_id}/"))
    assert "exported call" in shown and "crm__echo" in shown
    csv_export = _body(compliance.get(f"{base}export.csv", {"kind": "tool"}))
    assert record.request_id in csv_export and "crm__echo" in csv_export
    lines = _body(compliance.get(f"{base}export.jsonl", {"model": "crm__echo"})).splitlines()
    exported = [json.loads(line) for line in lines if record.request_id in line]
    assert len(exported) == 1 and exported[0]["model_requested"] == "crm__echo"
    # Only tool calls: none of the tenant's exported rows is anything else.
    tool_rows = [
        json.loads(line)
        for line in _body(compliance.get(f"{base}export.jsonl", {"kind": "tool"})).splitlines()
        if line.startswith("{") and '"request_id"' in line
    ]
    assert tool_rows and all(r["endpoint"] == "/mcp tools/call" for r in tool_rows)


def test_a_tenant_admin_sees_servers_tools_grants_and_the_tool_call_log(desk: Desk) -> None:
    asyncio.run(_call(desk, desk.intern_key, "crm__echo", {"text": "logged"}))
    record = _records(desk, "crm__echo")[-1]
    page = _body(_console(desk, Role.TENANT_ADMIN).get("/console/t/drill-tools/mcp/?list=crm"))
    assert desk.upstream.url in page and "held by the gateway" in page
    assert "crm__lookup_customer" in page and "team Advisors" in page and "team Interns" in page
    assert "crm__delete_record" in page  # the server's own list: a tool nobody is granted
    assert record.request_id in page and "tools-intern" in page
    assert UPSTREAM_TOKEN not in page
    assert _console(desk, Role.COMPLIANCE).get("/console/t/drill-tools/mcp/").status_code == 403


def test_tool_calls_are_measured_with_the_otel_mcp_names(desk: Desk) -> None:
    asyncio.run(_tools(desk, desk.intern_key))
    asyncio.run(_call(desk, desk.intern_key, "crm__echo", {"text": "measured"}))
    text = httpx.get(desk.gateway.url + "/metrics", timeout=10).text
    calls = [
        line
        for line in text.splitlines()
        if line.startswith("mcp_server_operation_duration_seconds_count{")
        and 'mcp_method_name="tools/call"' in line
        and 'gen_ai_tool_name="crm__echo"' in line
        and 'outcome="ok"' in line
    ]
    assert calls and float(calls[0].rsplit(" ", 1)[1]) >= 1
    assert 'mcp_method_name="tools/list"' in text
    # A refusal names its error type; a name nobody granted is not a label of its own.
    assert 'error_type="unknown_tool"' in text
    assert 'gen_ai_tool_name="crm__delete_record"' not in text

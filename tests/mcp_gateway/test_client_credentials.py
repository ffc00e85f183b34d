"""Upstream OAuth client credentials (RFC 6749 §4.4): the gateway obtains a token as itself and
sends it upstream; the agent never sees the client secret or the token, the token is reused
until shortly before it expires, a revoked one is replaced once, a wrong secret is named."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from audit.models import AuditRecord, AuditStatus
from mock_provider.mcp_server import SERVICE, McpMockState
from mock_provider.testing import McpMockServer, run_mcp_mock_server
from routing.mcp_gateway import services as mcp
from tests.support.live import LiveGateway, start_gateway
from tests.support.world import build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

CLIENT_ID = "gw-service"
CLIENT_SECRET = "cc-secret-held-by-the-gateway-only"


@dataclass
class Service:
    gateway: LiveGateway
    upstream: McpMockServer
    tenant_id: int
    key: str
    outsider_key: str


@pytest.fixture(scope="module")
def service(world: Any, django_db_blocker: Any) -> Iterator[Service]:
    # The server accepts only live tokens its own token endpoint issued.
    state = McpMockState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, require_issued=True)
    with run_mcp_mock_server(state=state) as upstream, django_db_blocker.unblock():
        ours = build_tenant("mcp-cc", name="Client Credentials", teams=["ops"], keys=["ops-agent"])
        other = build_tenant("mcp-cc-other", name="Other", teams=["ops"], keys=["their-agent"])
        for name, secret, scope in (
            ("tickets", CLIENT_SECRET, "tickets.read"),
            ("wrong", "not-the-secret", "wrong.scope"),
        ):
            server = mcp.mcp_server_upsert(
                tenant=ours.tenant,
                name=name,
                url=upstream.url,
                credential=None,
                client_credentials=mcp.ClientCredentials(
                    token_url=upstream.token_url,
                    client_id=CLIENT_ID,
                    client_secret=secret,
                    scope=scope,
                    audience="https://mcp.tickets.example",
                ),
            )
            mcp.mcp_grant_set(server=server, team=ours.team, tools=["echo", "whoami"])
        live = start_gateway()
        try:
            yield Service(
                live,
                upstream,
                ours.tenant.id,
                ours.key("ops-agent"),
                other.key("their-agent"),
            )
        finally:
            live.stop()


async def _session(svc: Service, *names: str, key: str | None = None) -> tuple[set[str], list[Any]]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key or svc.key}"}, timeout=30)
    async with Client(streamable_http_client(svc.gateway.url + "/mcp", http_client=http)) as c:
        listed = {t.name for t in (await c.list_tools()).tools}
        results: list[Any] = []
        for name in names:
            try:
                results.append(await c.call_tool(name, {"text": "hi"}))
            except MCPError as error:
                results.append(error)
        return listed, results


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def _grants(state: McpMockState, scope: str = "tickets.read") -> list[dict[str, str]]:
    return [
        f
        for f in state.exchanges
        if f.get("grant_type") == "client_credentials" and f.get("scope") == scope
    ]


def _latest(svc: Service, tool: str) -> AuditRecord:
    return AuditRecord.objects.filter(tenant_id=svc.tenant_id, model_requested=tool).latest("id")


def test_the_upstream_gets_the_gateways_token_and_the_agent_never_sees_it(
    service: Service,
) -> None:
    state = service.upstream.state
    before = len(_grants(state))
    listed, (whoami, echo) = asyncio.run(_session(service, "tickets__whoami", "tickets__echo"))
    _, (again,) = asyncio.run(_session(service, "tickets__echo"))

    assert {"tickets__whoami", "tickets__echo"} <= listed
    assert _text(whoami) == f"acting for {SERVICE}"
    assert _text(echo) == "hi" and _text(again) == "hi"
    # One token for the listing and the three calls of two sessions: held, not asked again.
    grants = _grants(state)
    assert len(grants) - before <= 1
    assert grants[-1]["audience"] == "https://mcp.tickets.example"
    assert "client_secret" not in grants[-1]  # HTTP Basic, not the form

    # The server saw issued tokens only: never the client secret, never the agent's key.
    received = b"\n".join(state.received).decode("latin-1")
    assert CLIENT_SECRET not in received and service.key not in received
    tokens = {a.partition(" ")[2] for a in state.authorizations}
    assert tokens and tokens <= set(state.issued)
    # Nor does the agent see a token, nor does the record hold one.
    shown = _text(whoami) + _text(echo) + _text(again)
    record = _latest(service, "tickets__echo")
    stored = json.dumps(
        [record.client_context, record.request_body, record.response_body], default=str
    )
    for token in state.issued:
        assert token not in shown and token not in stored
    assert CLIENT_SECRET not in stored
    assert record.status == AuditStatus.SUCCESS
    assert record.client_context["credential"] == "client_credentials"


def test_a_revoked_token_is_replaced_once_and_the_call_goes_through(service: Service) -> None:
    state = service.upstream.state
    asyncio.run(_session(service, "tickets__echo"))  # a token is held
    before, calls = len(_grants(state)), len(state.calls)
    state.revoke_all()  # the authorization server revokes it
    _, (result,) = asyncio.run(_session(service, "tickets__echo"))
    assert _text(result) == "hi" and not result.is_error
    assert len(_grants(state)) == before + 1  # asked once more, not in a loop
    assert len(state.calls) == calls + 1  # the tool ran once
    assert _latest(service, "tickets__echo").status == AuditStatus.SUCCESS


def test_a_token_is_used_until_shortly_before_it_expires(service: Service) -> None:
    state = service.upstream.state
    state.token_lifetime_s = 31  # held for 1 s (the gateway stops 30 s before expiry)
    try:
        state.revoke_all()
        asyncio.run(_session(service, "tickets__echo", "tickets__echo"))
        first = len(_grants(state))
        time.sleep(1.3)
        refused = state.authorizations.count("")
        _, (result,) = asyncio.run(_session(service, "tickets__echo"))
    finally:
        state.token_lifetime_s = 300
    assert len(_grants(state)) == first + 1
    assert _text(result) == "hi"
    assert state.authorizations.count("") == refused  # never sent without one


def test_a_wrong_secret_is_a_clear_json_rpc_error_with_its_cause_recorded(
    service: Service,
) -> None:
    state = service.upstream.state
    calls = len(state.authorizations)
    listed, (refused,) = asyncio.run(_session(service, "wrong__echo"))
    assert not any(name.startswith("wrong__") for name in listed)  # it cannot be listed
    assert isinstance(refused, MCPError), refused
    message = str(refused)
    assert "could not authenticate to wrong" in message
    assert "refused the gateway's client credentials (invalid_client)" in message
    assert refused.error.data == {"code": "client_credentials_refused", "server": "wrong"}
    assert "not-the-secret" not in message and CLIENT_SECRET not in message
    assert len(state.authorizations) == calls  # nothing reached the server
    record = _latest(service, "wrong__echo")
    assert record.status == AuditStatus.UPSTREAM_ERROR
    assert record.error_type == "client_credentials_refused"
    assert "invalid_client" in record.error_message
    assert "not-the-secret" not in json.dumps(
        [record.error_message, record.client_context], default=str
    )


def test_another_tenants_key_sees_no_server_and_no_tool(service: Service) -> None:
    grants, calls = len(_grants(service.upstream.state)), len(service.upstream.state.calls)
    listed, (refused,) = asyncio.run(_session(service, "tickets__echo", key=service.outsider_key))
    assert listed == set()
    assert isinstance(refused, MCPError) and "Unknown tool" in str(refused)
    # Its call neither reached the server nor made the gateway ask for a token.
    assert len(_grants(service.upstream.state)) == grants
    assert len(service.upstream.state.calls) == calls

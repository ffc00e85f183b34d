"""Per-user OAuth on behalf of the caller (RFC 8693): the upstream gets a token exchanged for the
end user's own, never the end user's token nor the gateway's client secret."""

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

from audit.models import AuditRecord, AuditStatus
from mock_provider.mcp_server import McpMockState
from mock_provider.testing import McpMockServer, run_mcp_mock_server
from routing.mcp_gateway import services as mcp
from routing.mcp_gateway.models import McpServer
from routing.mcp_gateway.token_exchange import GRANT_TYPE, SUBJECT_HEADER
from tenants import services as tenants
from tests.support.live import LiveGateway, start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

CLIENT_SECRET = "exchange-client-secret-held-by-the-gateway"
USERS = {
    "user-token-alice-0001": "alice",
    "user-token-bob-0002": "bob",
    "user-token-carol": "carol",
}


@dataclass
class OnBehalf:
    gateway: LiveGateway
    upstream: McpMockServer
    tenant_id: int
    key: str


@pytest.fixture(scope="module")
def on_behalf(world: Any, django_db_blocker: Any) -> Iterator[OnBehalf]:
    # The server accepts only tokens its own token endpoint issued (its static token is one
    # the gateway does not hold).
    state = McpMockState(
        token="static-token-nobody-has",
        client_id="gw-client",
        client_secret=CLIENT_SECRET,
        users=dict(USERS),
    )
    with run_mcp_mock_server(state=state) as upstream, django_db_blocker.unblock():
        tenant = tenants.tenant_apply(slug="mcp-obo", name="On Behalf")
        team = tenants.team_apply(tenant=tenant, slug="hr", name="HR", allowed_models=[])
        _, key = tenants.key_create(team=team, name="hr-agent")
        server = mcp.mcp_server_upsert(
            tenant=tenant,
            name="hr",
            url=upstream.url,
            credential=None,
            credential_header="x-api-key",
            token_exchange=mcp.TokenExchange(
                token_url=upstream.token_url,
                client_id="gw-client",
                client_secret=CLIENT_SECRET,
                audience="https://mcp.hr.example",
                scope="profile.read",
            ),
        )
        mcp.mcp_grant_set(server=server, team=team, tools=["whoami", "echo"])
        live = start_gateway()
        try:
            yield OnBehalf(live, upstream, tenant.id, key.plaintext)
        finally:
            live.stop()


def _client(ob: OnBehalf, subject: str | None) -> Client:
    headers = {"authorization": f"Bearer {ob.key}"}
    if subject is not None:
        headers[SUBJECT_HEADER] = subject
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    return Client(streamable_http_client(ob.gateway.url + "/mcp", http_client=http))


async def _session(ob: OnBehalf, subject: str | None, *names: str) -> tuple[set[str], list[Any]]:
    async with _client(ob, subject) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        return listed, [await client.call_tool(name, {"text": "hi"}) for name in names]


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def test_the_upstream_acts_for_each_end_user_with_an_exchanged_token(on_behalf: OnBehalf) -> None:
    state = on_behalf.upstream.state
    listed, (alice, again) = asyncio.run(
        _session(on_behalf, "user-token-alice-0001", "hr__whoami", "hr__whoami")
    )
    _, (bob,) = asyncio.run(_session(on_behalf, "user-token-bob-0002", "hr__whoami"))
    assert listed == {"hr__whoami", "hr__echo"}
    assert _text(alice) == "acting for alice" and _text(again) == "acting for alice"
    assert _text(bob) == "acting for bob"

    # Exchanged once per user (then held until it expires), as RFC 8693 asks.
    alices = [f for f in state.exchanges if f.get("subject_token") == "user-token-alice-0001"]
    assert len(alices) == 1
    assert alices[0]["grant_type"] == GRANT_TYPE
    assert alices[0]["subject_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert alices[0]["audience"] == "https://mcp.hr.example"
    assert alices[0]["scope"] == "profile.read"
    assert "client_secret" not in alices[0]  # HTTP Basic, not the form

    # What reached the MCP server: exchanged tokens only; never a subject token, never the
    # gateway's client secret, never the agent's key.
    received = b"\n".join(state.received).decode("latin-1")
    for secret in (*USERS, CLIENT_SECRET, on_behalf.key):
        assert secret not in received
    assert {a.partition(" ")[2] for a in state.authorizations} <= set(state.issued)
    # Nor does the agent ever see the exchanged token.
    assert not any(token in _text(alice) for token in state.issued)


def test_the_record_says_on_whose_behalf_and_holds_no_token(on_behalf: OnBehalf) -> None:
    asyncio.run(_session(on_behalf, "user-token-alice-0001", "hr__echo"))
    record = AuditRecord.objects.filter(
        tenant_id=on_behalf.tenant_id, model_requested="hr__echo"
    ).latest("id")
    assert record.status == AuditStatus.SUCCESS
    assert record.client_context["credential"] == "token_exchange"
    stored = json.dumps(
        [record.client_context, record.request_body, record.response_body], default=str
    )
    assert "user-token-alice" not in stored and "xchg-" not in stored


def test_without_the_end_users_token_the_server_is_neither_listed_nor_called(
    on_behalf: OnBehalf,
) -> None:
    calls = len(on_behalf.upstream.state.calls)
    listed, (result,) = asyncio.run(_session(on_behalf, None, "hr__whoami"))
    assert listed == set()
    assert result.is_error and f"send the end user's token in the {SUBJECT_HEADER}" in _text(result)
    record = AuditRecord.objects.filter(
        tenant_id=on_behalf.tenant_id, model_requested="hr__whoami"
    ).latest("id")
    assert record.status == AuditStatus.REJECTED
    assert record.error_type == "subject_token_missing"
    assert len(on_behalf.upstream.state.calls) == calls


def test_a_token_the_endpoint_refuses_is_named_and_nothing_goes_upstream(
    on_behalf: OnBehalf,
) -> None:
    calls = len(on_behalf.upstream.state.calls)
    listed, (result,) = asyncio.run(_session(on_behalf, "user-token-mallory", "hr__whoami"))
    assert listed == set()
    assert result.is_error and "refused to act for the end user (invalid_grant)" in _text(result)
    assert "user-token-mallory" not in _text(result)
    assert len(on_behalf.upstream.state.calls) == calls


def test_an_exchanged_token_is_used_until_shortly_before_it_expires(on_behalf: OnBehalf) -> None:
    state = on_behalf.upstream.state
    state.token_lifetime_s = 31  # held for 1 s (the gateway stops 30 s before expiry)
    try:
        asyncio.run(_session(on_behalf, "user-token-carol", "hr__whoami", "hr__whoami"))
        first = sum(1 for f in state.exchanges if f.get("subject_token") == "user-token-carol")
        time.sleep(1.2)
        _, (result,) = asyncio.run(_session(on_behalf, "user-token-carol", "hr__whoami"))
    finally:
        state.token_lifetime_s = 300
    later = sum(1 for f in state.exchanges if f.get("subject_token") == "user-token-carol")
    assert (first, later) == (1, 2)
    assert _text(result) == "acting for carol"


def test_a_token_endpoint_on_a_refused_network_is_refused_when_saved(
    on_behalf: OnBehalf, settings: Any
) -> None:
    from routing.core.egress import EgressPolicy

    settings.GATEWAY_EGRESS = EgressPolicy.parse([])
    server = McpServer.objects.get(tenant_id=on_behalf.tenant_id, name="hr")
    with pytest.raises(mcp.McpServerRefused) as refused:
        mcp.mcp_server_upsert(
            tenant=server.tenant,
            name="hr2",
            url="https://mcp.hr.example/mcp",
            credential=None,
            credential_header="x-api-key",
            token_exchange=mcp.TokenExchange(
                token_url="http://169.254.169.254/token", client_id="c", client_secret="s"
            ),
        )
    assert refused.value.code == "egress_refused"
    assert refused.value.field == "token_exchange.token_url"

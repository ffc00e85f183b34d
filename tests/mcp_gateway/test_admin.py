"""MCP servers and grants in the management API and the console: scoped by tenant and role."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from routing.mcp_gateway import services as mcp
from routing.mcp_gateway.models import McpServer, McpToolGrant
from tenants.models import Role
from tests.console.conftest import Acme, make_acme
from tests.management.conftest import Api, Side

pytestmark = pytest.mark.django_db


def test_a_tenant_key_creates_a_server_and_grants_a_team_its_tools(
    as_ours: Api, ours: Side
) -> None:
    body = {"name": "crm", "url": "https://mcp.hooli.example/mcp", "credential": "hooli-mcp-token"}
    created = as_ours.post("/tenants/hooli/mcp/servers", body)
    assert created.status_code == 201, created.content
    shown = created.json()
    assert shown["credential_set"] is True and "hooli-mcp-token" not in created.content.decode()
    granted = as_ours.put(
        f"/tenants/hooli/mcp/servers/crm/teams/{ours.team.slug}",
        {"tools": ["lookup_customer"], "calls_per_minute": 10},
    )
    assert granted.status_code == 200, granted.content
    narrowed = as_ours.put(f"/tenants/hooli/mcp/servers/crm/keys/{ours.key.pk}", {"tools": ["x"]})
    assert narrowed.status_code == 200
    listed = as_ours.get("/tenants/hooli/mcp/servers").json()
    crm = next(s for s in listed if s["name"] == "crm")
    assert [(g["team"], g["tools"]) for g in crm["grants"]] == [
        (ours.team.slug, ["lookup_customer"]),
        (None, ["x"]),
    ]
    # Create never overwrites; update never creates.
    assert as_ours.post("/tenants/hooli/mcp/servers", body).status_code == 409
    assert (
        as_ours.patch("/tenants/hooli/mcp/servers/nope", {"timeout_seconds": 5}).status_code == 404
    )
    # Moving it elsewhere needs the credential again: the stored one is not sent to a new host.
    moved = as_ours.patch("/tenants/hooli/mcp/servers/crm", {"url": "https://evil.example/mcp"})
    assert moved.status_code == 422 and moved.json()["error"]["code"] == "credential_required"
    changed = as_ours.patch("/tenants/hooli/mcp/servers/crm", {"result_injection": "flag"})
    assert changed.status_code == 200 and changed.json()["result_injection"] == "flag"
    assert (
        McpServer.objects.get(tenant=ours.tenant, name="crm").get_credential() == "hooli-mcp-token"
    )


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://169.254.169.254/mcp", "egress_refused"),
        ("file:///bin/sh", "egress_refused"),
    ],
)
def test_the_api_refuses_an_upstream_the_egress_policy_refuses(
    as_ours: Api, ours: Side, url: str, code: str
) -> None:
    response = as_ours.post("/tenants/hooli/mcp/servers", {"name": "inside", "url": url})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert not McpServer.objects.filter(tenant=ours.tenant, name="inside").exists()


def test_a_command_is_not_a_field_of_a_server(as_ours: Api, ours: Side) -> None:
    body = {"name": "shell", "url": "https://mcp.example/mcp", "command": "/bin/sh"}
    response = as_ours.post("/tenants/hooli/mcp/servers", body)
    assert response.status_code == 422
    assert not McpServer.objects.filter(tenant=ours.tenant, name="shell").exists()


def test_another_tenants_key_sees_and_changes_nothing(as_ours: Api, theirs: Side) -> None:
    server = mcp.mcp_server_upsert(
        tenant=theirs.tenant, name="crm", url="https://mcp.piedpiper.example/mcp", credential="t"
    )
    listed = as_ours.get("/tenants/hooli/mcp/servers").json()
    assert [s["name"] for s in listed] == ["hooli-crm"]  # its own, never theirs
    mcp.mcp_grant_set(server=server, team=theirs.team, tools=["*"])
    assert as_ours.get("/tenants/piedpiper/mcp/servers").status_code == 404
    assert as_ours.get("/tenants/piedpiper/mcp/servers/crm").status_code == 404
    patch = as_ours.patch("/tenants/piedpiper/mcp/servers/crm", {"url": "https://evil.example/mcp"})
    assert patch.status_code == 404
    grant = as_ours.put(
        f"/tenants/hooli/mcp/servers/crm/teams/{theirs.team.slug}", {"tools": ["*"]}
    )
    assert grant.status_code == 404
    assert McpServer.objects.get(pk=server.pk).url == "https://mcp.piedpiper.example/mcp"
    assert McpToolGrant.objects.filter(server=server).count() == 1


@pytest.fixture
def acme(db: None, settings: Any) -> Acme:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_console_shows_a_tenant_admin_servers_grants_and_tool_calls(acme: Acme) -> None:
    server = mcp.mcp_server_upsert(
        tenant=acme.tenant, name="crm", url="https://mcp.acme.example/mcp", credential="secret-1"
    )
    mcp.mcp_grant_set(server=server, team=acme.team, tools=["lookup_customer"], calls_per_minute=7)
    page = _signed_in(acme.users[Role.TENANT_ADMIN]).get("/console/t/acme-c/mcp/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "https://mcp.acme.example/mcp" in text and "held by the gateway" in text
    assert "lookup_customer" in text and "team Quants" in text
    assert "secret-1" not in text
    assert _signed_in(acme.users[Role.DEVELOPER]).get("/console/t/acme-c/mcp/").status_code == 403
    assert _signed_in(acme.users["outsider"]).get("/console/t/acme-c/mcp/").status_code == 404


def test_prices_and_token_exchange_through_the_api_secret_write_only(
    as_ours: Api, ours: Side
) -> None:
    exchange = {
        "token_url": "https://idp.hooli.example/oauth2/token",
        "client_id": "gw",
        "client_secret": "exchange-secret-0123",
        "audience": "https://mcp.hooli.example",
    }
    body = {
        "name": "hr",
        "url": "https://mcp.hooli.example/mcp",
        "credential_header": "x-api-key",
        "tool_prices": {"lookup_employee": 0.002, "*": "0.0005"},
        "token_exchange": exchange,
    }
    created = as_ours.post("/tenants/hooli/mcp/servers", body)
    assert created.status_code == 201, created.content
    shown = created.json()
    assert "exchange-secret-0123" not in created.content.decode()
    assert shown["tool_prices"] == {"lookup_employee": "0.002", "*": "0.0005"}
    assert shown["token_exchange"]["client_secret_set"] is True
    assert shown["token_exchange"]["audience"] == "https://mcp.hooli.example"
    server = McpServer.objects.get(tenant=ours.tenant, name="hr")
    assert server.get_exchange_client_secret() == "exchange-secret-0123"
    assert "exchange-secret" not in server.exchange_client_secret_encrypted

    # A PATCH that leaves token_exchange out keeps it, secret included.
    kept = as_ours.patch("/tenants/hooli/mcp/servers/hr", {"tool_prices": {"*": "0.001"}})
    assert kept.status_code == 200, kept.content
    assert kept.json()["tool_prices"] == {"*": "0.001"}
    assert kept.json()["token_exchange"]["client_secret_set"] is True
    # Moving the token endpoint elsewhere needs the client secret again.
    moved = as_ours.patch(
        "/tenants/hooli/mcp/servers/hr",
        {
            "token_exchange": {
                **exchange,
                "client_secret": None,
                "token_url": "https://evil.example/t",
            }
        },
    )
    assert moved.status_code == 422 and moved.json()["error"]["code"] == "credential_required"
    # The exchanged token goes in Authorization: a static credential there is refused.
    clash = as_ours.patch("/tenants/hooli/mcp/servers/hr", {"credential_header": "authorization"})
    assert clash.status_code == 422
    assert clash.json()["error"]["fields"][0]["field"] == "credential_header"
    negative = as_ours.patch("/tenants/hooli/mcp/servers/hr", {"tool_prices": {"x": -1}})
    assert negative.status_code == 422
    off = as_ours.patch("/tenants/hooli/mcp/servers/hr", {"token_exchange": None})
    assert off.status_code == 200 and off.json()["token_exchange"] is None
    server.refresh_from_db()
    assert server.exchange_client_secret_encrypted == "" and server.tool_prices == {"*": "0.001"}


def test_client_credentials_through_the_api_secret_write_only(as_ours: Api, ours: Side) -> None:
    from audit.activity.models import ActivityEvent

    grant = {
        "token_url": "https://idp.hooli.example/oauth2/token",
        "client_id": "gw-service",
        "client_secret": "cc-secret-0123456789",
        "scope": "tickets.read",
    }
    body = {"name": "tickets", "url": "https://mcp.hooli.example/mcp", "client_credentials": grant}
    created = as_ours.post("/tenants/hooli/mcp/servers", body)
    assert created.status_code == 201, created.content
    assert "cc-secret-0123456789" not in created.content.decode()
    assert created.json()["client_credentials"] == {
        "token_url": "https://idp.hooli.example/oauth2/token",
        "client_id": "gw-service",
        "client_secret_set": True,
        "scope": "tickets.read",
        "audience": "",
    }
    server = McpServer.objects.get(tenant=ours.tenant, name="tickets")
    assert server.get_oauth_client_secret() == "cc-secret-0123456789"
    assert "cc-secret" not in server.oauth_client_secret_encrypted
    listed = as_ours.get("/tenants/hooli/mcp/servers").content.decode()
    assert "cc-secret" not in listed
    # The activity log says it changed, never what it is.
    events = ActivityEvent.objects.filter(tenant_id=ours.tenant.id, action="mcp_server.create")
    assert events.exists() and "cc-secret" not in str(list(events.values("details")))

    # A PATCH that leaves it out keeps it, secret included.
    kept = as_ours.patch("/tenants/hooli/mcp/servers/tickets", {"timeout_seconds": 10})
    assert kept.status_code == 200 and kept.json()["client_credentials"]["client_secret_set"]
    # Moving the token endpoint elsewhere needs the client secret again.
    moved = as_ours.patch(
        "/tenants/hooli/mcp/servers/tickets",
        {
            "client_credentials": {
                **grant,
                "client_secret": None,
                "token_url": "https://evil.example/t",
            }
        },
    )
    assert moved.status_code == 422, moved.content
    assert moved.json()["error"]["code"] == "credential_required"
    assert moved.json()["error"]["fields"][0]["field"] == "client_credentials.client_secret"
    # Not with token exchange too; no client secret at all is refused.
    both = as_ours.patch(
        "/tenants/hooli/mcp/servers/tickets",
        {"token_exchange": {**grant, "client_secret": "x"}},
    )
    assert both.status_code == 422 and "not both" in both.json()["error"]["message"]
    bare = {**body, "name": "bare", "client_credentials": {**grant, "client_secret": None}}
    assert as_ours.post("/tenants/hooli/mcp/servers", bare).status_code == 422
    # A static credential in Authorization would clash with the token.
    clash = as_ours.patch("/tenants/hooli/mcp/servers/tickets", {"credential": "static"})
    assert clash.status_code == 422
    assert clash.json()["error"]["fields"][0]["field"] == "credential_header"
    off = as_ours.patch("/tenants/hooli/mcp/servers/tickets", {"client_credentials": None})
    assert off.status_code == 200 and off.json()["client_credentials"] is None
    server.refresh_from_db()
    assert server.oauth_client_secret_encrypted == "" and server.oauth_token_url == ""


def test_a_tenant_admin_sees_each_tools_price_and_callers_and_sets_a_price(acme: Acme) -> None:
    from audit.activity.models import ActivityEvent
    from mock_provider.testing import run_mcp_mock_server

    with run_mcp_mock_server(token="console-token") as upstream:
        server = mcp.mcp_server_upsert(
            tenant=acme.tenant,
            name="crm",
            url=upstream.url,
            credential="console-token",
            tool_prices={"lookup_customer": "0.01"},
        )
        mcp.mcp_grant_set(server=server, team=acme.team, tools=["lookup_customer", "echo"])
        admin = _signed_in(acme.users[Role.TENANT_ADMIN])
        page = admin.get("/console/t/acme-c/mcp/").content.decode()
        # Without asking the server: the tools the grants and prices name.
        assert "crm__lookup_customer" in page and "$0.01" in page
        assert "team Quants" in page and "crm__fetch_page" not in page
        listed = admin.get("/console/t/acme-c/mcp/?list=crm").content.decode()
    # Asked: the server's own list, each tool with its description, price and callers.
    assert "crm__fetch_page" in listed and "Fetch a web page as text." in listed
    assert "crm__delete_record" in listed
    row = listed[listed.index("crm__delete_record") :].split("</tr>")[0]
    assert "nobody" in row and "free" in row
    assert "console-token" not in listed

    saved = admin.post(
        "/console/t/acme-c/mcp/prices/",
        {"server": server.pk, "tool": "echo", "price_usd": "0.0025"},
    )
    assert saved.status_code == 302
    server.refresh_from_db()
    assert server.tool_prices == {"lookup_customer": "0.01", "echo": "0.0025"}
    assert ActivityEvent.objects.filter(action="mcp_server.price").exists()
    refused = admin.post(
        "/console/t/acme-c/mcp/prices/", {"server": server.pk, "tool": "echo", "price_usd": "-1"}
    )
    assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    removed = admin.post("/console/t/acme-c/mcp/prices/", {"server": server.pk, "tool": "echo"})
    assert removed.status_code == 302
    server.refresh_from_db()
    assert server.tool_prices == {"lookup_customer": "0.01"}
    # Only a tenant admin of this tenant sets prices.
    body = {"server": server.pk, "tool": "echo", "price_usd": "9"}
    developer = _signed_in(acme.users[Role.DEVELOPER])
    assert developer.post("/console/t/acme-c/mcp/prices/", body).status_code == 403
    outsider = _signed_in(acme.users["outsider"])
    assert outsider.post("/console/t/acme-c/mcp/prices/", body).status_code == 404
    server.refresh_from_db()
    assert "echo" not in server.tool_prices


def test_a_tenant_admin_sets_client_credentials_in_the_console_secret_never_shown(
    acme: Acme, settings: Any
) -> None:
    server = mcp.mcp_server_upsert(
        tenant=acme.tenant, name="tickets", url="https://mcp.acme.example/mcp", credential=None
    )
    admin = _signed_in(acme.users[Role.TENANT_ADMIN])
    url = "/console/t/acme-c/mcp/client-credentials/"
    body = {
        "server": server.pk,
        "token_url": "https://idp.acme.example/oauth2/token",
        "client_id": "gw-service",
        "client_secret": "console-cc-secret-0123",
        "scope": "tickets.read",
    }
    assert admin.post(url, body).status_code == 302
    server.refresh_from_db()
    assert (server.oauth_token_url, server.oauth_client_id, server.oauth_scope) == (
        "https://idp.acme.example/oauth2/token",
        "gw-service",
        "tickets.read",
    )
    assert server.get_oauth_client_secret() == "console-cc-secret-0123"
    page = admin.get("/console/t/acme-c/mcp/").content.decode()
    assert "gw-service" in page and "client credentials" in page
    assert "console-cc-secret" not in page
    # Left empty, the secret is kept; a refused form never shows what was typed.
    assert admin.post(url, {**body, "client_secret": "", "scope": "x"}).status_code == 302
    server.refresh_from_db()
    assert server.get_oauth_client_secret() == "console-cc-secret-0123"
    from routing.core.egress import EgressPolicy

    settings.GATEWAY_EGRESS = EgressPolicy.parse([])
    refused = admin.post(
        url, {**body, "token_url": "http://169.254.169.254/token", "client_secret": "typed-9"}
    )
    shown = refused.content.decode()
    assert refused.status_code == 200 and "egress policy" in shown and "typed-9" not in shown
    server.refresh_from_db()
    assert server.oauth_token_url == "https://idp.acme.example/oauth2/token"
    # Only a tenant admin of this tenant sets them.
    developer = _signed_in(acme.users[Role.DEVELOPER])
    assert developer.post(url, body).status_code == 403
    outsider = _signed_in(acme.users["outsider"])
    assert outsider.post(url, body).status_code == 404
    # Turned off: the secret is gone.
    assert admin.post(url, {"server": server.pk, "turn_off": "on"}).status_code == 302
    server.refresh_from_db()
    assert server.oauth_token_url == "" and server.oauth_client_secret_encrypted == ""

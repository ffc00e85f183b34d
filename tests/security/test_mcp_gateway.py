"""The MCP gateway never runs a command, and sends an upstream credential only where egress allows.

The attack (a peer gateway's CVE, exploited in the wild): an MCP configuration names a command
(stdio transport) and any key that can reach the endpoint runs it on the host. Here no field,
URL or transport leads to a process; and an upstream URL on a refused network is refused when
it is saved and again when a connection is opened (its name may resolve elsewhere by then).
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from gateway_site.declarative.services import ConfigError, config_apply, config_load
from mock_provider.testing import McpMockServer, run_mcp_mock_server
from routing.core.egress import EgressPolicy
from routing.mcp_gateway import services as mcp
from routing.mcp_gateway.models import McpServer
from tests.support.live import LiveGateway, start_gateway
from tests.support.world import build_tenant

ROOT = Path(__file__).resolve().parents[2]
# What starts a process from Python, and the SDK's ways to run an MCP server as one.
_FORBIDDEN_MODULES = {
    "subprocess",
    "multiprocessing",
    "pty",
    "mcp.client.stdio",
    "mcp.server.stdio",
}
_FORBIDDEN_NAMES = {
    "system",
    "popen",
    "spawnl",
    "spawnv",
    "execv",
    "execve",
    "execvp",
    "fork",
    "create_subprocess_exec",
    "create_subprocess_shell",
    "StdioServerParameters",
    "stdio_client",
}


def test_no_module_of_the_mcp_gateway_can_start_a_process() -> None:
    found = []
    modules = sorted((ROOT / "routing" / "mcp_gateway").rglob("*.py"))
    # The walk must read the gateway's code: an empty walk (the app moved) would prove nothing.
    assert {"endpoint.py", "calls.py", "upstream.py", "token_exchange.py"} <= {
        p.name for p in modules
    }
    for path in modules:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.Attribute):
                names = [node.attr]
            elif isinstance(node, ast.Name):
                names = [node.id]
            else:
                continue
            bad = {n for n in names if n in _FORBIDDEN_MODULES or n in _FORBIDDEN_NAMES}
            found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in bad]  # type: ignore[attr-defined]
    assert found == []


def _tenant_file(tmp_path: Path, server: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    config = {"tenants": [{"slug": "cfg-mcp", "name": "Cfg", "mcp_servers": [server]}]}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "server",
    [
        {"name": "shell", "command": "/bin/sh", "args": ["-c", "id"]},
        {"name": "shell", "url": "http://mcp.example/mcp", "command": "/bin/sh"},
        {"name": "shell", "url": "http://mcp.example/mcp", "transport": "stdio"},
        {"name": "shell", "url": "stdio:///bin/sh"},
        {"name": "shell", "url": "file:///bin/sh"},
        {"name": "shell", "url": "npx -y @evil/server"},
    ],
)
def test_no_configuration_names_a_command_or_a_stdio_transport(
    tmp_path: Path, server: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError):
        config_load(_tenant_file(tmp_path, server))


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["stdio:///bin/sh", "file:///bin/sh", "unix:///run/sock"])
def test_the_service_refuses_every_url_that_is_not_http(url: str) -> None:
    tenant = build_tenant("svc-mcp", name="Svc").tenant
    with pytest.raises(mcp.McpServerRefused) as refused:
        mcp.mcp_server_upsert(tenant=tenant, name="shell", url=url, credential=None)
    assert refused.value.code == "egress_refused"
    assert not McpServer.objects.filter(tenant=tenant).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://metadata.google.internal/mcp", "metadata"),
        ("http://10.1.2.3/mcp", "private"),
        ("http://[::1]:9100/mcp", "loopback"),
        ("http://127.0.0.1:9100/mcp", "loopback"),
    ],
)
def test_an_upstream_on_a_refused_network_is_refused_when_saved(
    settings: Any, tmp_path: Path, url: str, rule: str
) -> None:
    settings.GATEWAY_EGRESS = EgressPolicy.parse([])  # the default: no loopback, no private
    tenant = build_tenant("net-mcp", name="Net").tenant
    with pytest.raises(mcp.McpServerRefused) as refused:
        mcp.mcp_server_upsert(tenant=tenant, name="inside", url=url, credential="tok")
    assert f"egress rule '{rule}'" in refused.value.message
    # The YAML file is refused whole, naming the server.
    with pytest.raises(ConfigError, match=r"MCP server inside.*egress_refused"):
        config_apply(config_load(_tenant_file(tmp_path, {"name": "inside", "url": url})))
    assert not McpServer.objects.filter(name="inside").exists()


@pytest.fixture(scope="module")
def upstream() -> Iterator[McpMockServer]:
    with run_mcp_mock_server(token="tok-held-by-the-gateway") as server:
        yield server


@pytest.fixture(scope="module")
def strict_gateway(world: Any, upstream: McpMockServer, django_db_blocker: Any) -> Iterator[Any]:
    """A gateway whose egress policy refuses loopback, and a server saved while it was allowed
    (as if its name resolved to a public address then, and to 127.0.0.1 now)."""
    with django_db_blocker.unblock():
        connect = build_tenant("connect-mcp", name="Connect", teams=["ops"], keys=["connect-key"])
        tenant, team = connect.tenant, connect.team
        server = mcp.mcp_server_upsert(
            tenant=tenant, name="moved", url=upstream.url, credential="tok-held-by-the-gateway"
        )
        mcp.mcp_grant_set(server=server, team=team, tools=["*"])
        # One that acts for the end user: its token endpoint is on the refused network too.
        obo = mcp.mcp_server_upsert(
            tenant=tenant,
            name="obo",
            url=upstream.url,
            credential=None,
            credential_header="x-api-key",
            token_exchange=mcp.TokenExchange(
                token_url=upstream.token_url,
                client_id=upstream.state.client_id,
                client_secret=upstream.state.client_secret,
            ),
        )
        mcp.mcp_grant_set(server=obo, team=team, tools=["*"])
        # One that authenticates as the gateway (client credentials), same token endpoint.
        service = mcp.mcp_server_upsert(
            tenant=tenant,
            name="service",
            url=upstream.url,
            credential=None,
            client_credentials=mcp.ClientCredentials(
                token_url=upstream.token_url,
                client_id=upstream.state.client_id,
                client_secret=upstream.state.client_secret,
            ),
        )
        mcp.mcp_grant_set(server=service, team=team, tools=["*"])
    live: LiveGateway = start_gateway(GATEWAY_EGRESS_ALLOW_LOOPBACK="false")
    yield live, connect.key("connect-key")
    live.stop()


async def _session(live: LiveGateway, key: str, name: str) -> tuple[set[str], Any]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30)
    async with Client(streamable_http_client(live.url + "/mcp", http_client=http)) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        return listed, await client.call_tool(name, {"text": "hello"})


@pytest.mark.django_db
def test_an_upstream_on_a_refused_network_is_refused_at_connect_time(
    strict_gateway: Any, upstream: McpMockServer
) -> None:
    from audit.models import AuditRecord

    live, key = strict_gateway
    before = len(upstream.state.authorizations)
    listed, result = asyncio.run(_session(live, key, "moved__echo"))
    assert listed == set()  # its tools cannot be listed: it cannot be reached
    assert result.is_error
    text = result.content[0].text
    assert "egress policy" in text and "egress rule 'loopback'" in text
    assert len(upstream.state.authorizations) == before  # not one byte reached it
    record = AuditRecord.objects.filter(model_requested="moved__echo").latest("id")
    assert record.error_type == "egress_refused"


@pytest.mark.django_db
def test_a_token_endpoint_on_a_refused_network_is_refused_at_connect_time(
    strict_gateway: Any, upstream: McpMockServer
) -> None:
    from audit.models import AuditRecord

    live, key = strict_gateway
    exchanges = len(upstream.state.exchanges)

    async def call() -> Any:
        headers = {"authorization": f"Bearer {key}", "x-gateway-subject-token": "user-token-x"}
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        async with Client(streamable_http_client(live.url + "/mcp", http_client=http)) as client:
            return await client.call_tool("obo__echo", {"text": "hello"})

    result = asyncio.run(call())
    assert result.is_error and "egress rule 'loopback'" in result.content[0].text
    # Neither the subject token nor the client secret left: the token endpoint saw nothing.
    assert len(upstream.state.exchanges) == exchanges
    record = AuditRecord.objects.filter(model_requested="obo__echo").latest("id")
    assert record.error_type == "egress_refused"


@pytest.mark.django_db
def test_a_client_credentials_token_endpoint_on_a_refused_network_is_refused_at_connect_time(
    strict_gateway: Any, upstream: McpMockServer
) -> None:
    from audit.models import AuditRecord

    live, key = strict_gateway
    exchanges, calls = len(upstream.state.exchanges), len(upstream.state.authorizations)

    async def call() -> Any:
        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30)
        async with Client(streamable_http_client(live.url + "/mcp", http_client=http)) as client:
            try:
                return await client.call_tool("service__echo", {"text": "hello"})
            except MCPError as error:
                return error

    refused = asyncio.run(call())
    assert isinstance(refused, MCPError), refused
    assert "could not authenticate to service" in str(refused)
    assert "egress rule 'loopback'" in str(refused)
    assert upstream.state.client_secret not in str(refused)
    # The client secret never left: neither the token endpoint nor the server saw a request.
    assert len(upstream.state.exchanges) == exchanges
    assert len(upstream.state.authorizations) == calls
    record = AuditRecord.objects.filter(model_requested="service__echo").latest("id")
    assert (record.status, record.error_type) == ("upstream_error", "egress_refused")
    assert record.client_context["credential"] == "client_credentials"


@pytest.mark.django_db
def test_a_client_credentials_token_endpoint_on_a_refused_network_is_refused_when_saved(
    world: Any, settings: Any
) -> None:
    settings.GATEWAY_EGRESS = EgressPolicy.parse([])
    tenant = build_tenant("cc-saved", name="CC saved", teams=["ops"], keys=["k"]).tenant
    with pytest.raises(mcp.McpServerRefused) as refused:
        mcp.mcp_server_upsert(
            tenant=tenant,
            name="meta",
            url="https://mcp.tickets.example/mcp",
            credential=None,
            client_credentials=mcp.ClientCredentials(
                token_url="http://169.254.169.254/latest/token",
                client_id="gw",
                client_secret="s3cret-cc",
            ),
        )
    assert (refused.value.code, refused.value.field) == (
        "egress_refused",
        "client_credentials.token_url",
    )
    assert not McpServer.objects.filter(tenant=tenant, name="meta").exists()

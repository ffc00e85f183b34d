"""What a tenant's MCP server offers, for the console: each tool with its price and who may call it.

The tools are the ones the grants and prices name, and, when a tenant admin asks for it, the
server's own `tools/list`, fetched once through the egress-checked client with the gateway's
credential, static or obtained with its client credentials (never a server that acts for the
end user: the console has no end user's token).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
from asgiref.sync import async_to_sync

from routing.core.egress_transport import egress_transport
from routing.egress import egress_policy
from routing.mcp_gateway.models import EVERY_TOOL, McpServer, McpToolGrant
from routing.mcp_gateway.oauth import ClientCredentialsTokens, TokenFailure
from routing.mcp_gateway.table import upstream_of
from routing.mcp_gateway.token_exchange import SUBJECT_HEADER
from routing.mcp_gateway.upstream import UpstreamClient, UpstreamFailure

LIST_TIMEOUT_S = 5.0


@dataclass
class ToolRow:
    name: str
    description: str = ""
    price_usd: Decimal | None = None  # None: no price (free)
    callers: list[str] = field(default_factory=list)  # "team Advisors", "key bot (gw-ab…)"
    listed: bool = False  # the server's own list names it


@dataclass
class Inventory:
    server: McpServer
    tools: list[ToolRow]
    listed: bool  # the server's own list was asked for and answered
    problem: str = ""  # why it could not be listed


def _holder(grant: McpToolGrant) -> str:
    if grant.team is not None:
        return f"team {grant.team.name}"
    assert grant.api_key is not None
    return f"key {grant.api_key.name} ({grant.api_key.prefix}…, within its team's grant)"


async def _list(server: McpServer) -> list[dict[str, object]]:
    # One connection, through the egress policy like every upstream hop.
    limits = httpx.Limits(max_connections=1)
    transport = egress_transport(egress_policy(), kind="httpx", limits=limits)
    async with httpx.AsyncClient(transport=transport, timeout=LIST_TIMEOUT_S) as http:
        async with asyncio.timeout(min(LIST_TIMEOUT_S, server.timeout_seconds)):
            upstream = upstream_of(server)
            bearer = None
            if upstream.client_credentials is not None:
                bearer = await ClientCredentialsTokens(http).token_for(upstream)
            result = await UpstreamClient(http).request(upstream, "tools/list", {}, bearer=bearer)
    return [t for t in result.get("tools") or () if isinstance(t, dict)]


def server_inventory(
    *, server: McpServer, grants: list[McpToolGrant], ask_server: bool
) -> Inventory:
    prices = {tool: Decimal(price) for tool, price in (server.tool_prices or {}).items()}
    rows: dict[str, ToolRow] = {}
    problem = ""
    listed = False
    if ask_server and server.exchange_token_url:
        problem = (
            "it acts for the end user (token exchange): only an agent sending the end user's "
            f"token in {SUBJECT_HEADER} can list it"
        )
    elif ask_server:
        try:
            for tool in async_to_sync(_list)(server):
                name = str(tool.get("name") or "")
                if name:
                    rows[name] = ToolRow(
                        name, str(tool.get("description") or "")[:300], listed=True
                    )
            listed = True
        except (UpstreamFailure, TokenFailure, TimeoutError) as failure:
            problem = str(failure) or f"it did not answer within {LIST_TIMEOUT_S:g} s"
    named = {t for g in grants for t in g.tools} | set(prices)
    for name in sorted(named - {EVERY_TOOL}):
        rows.setdefault(name, ToolRow(name))
    for row in rows.values():
        row.price_usd = prices.get(row.name, prices.get(EVERY_TOOL))
        row.callers = [_holder(g) for g in grants if EVERY_TOOL in g.tools or row.name in g.tools]
    return Inventory(server, sorted(rows.values(), key=lambda r: r.name), listed, problem)

"""The MCP servers and grants every tool call may need, cached per worker (gateway_site/snapshot.py).

Loaded whole, refreshed in the background when older than GATEWAY_ROUTES_CACHE_SECONDS: a warm
`tools/list` or `tools/call` makes no ORM query.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptography.fernet import InvalidToken

from gateway_site.snapshot import Snapshot
from routing.mcp_gateway.models import ACCESS_TOKEN_TYPE, McpServer, McpToolGrant
from routing.mcp_gateway.models import EVERY_TOOL as EVERY_PRICED_TOOL
from tenants.auth import KeyIdentity

EVERY_TOOL = "*"
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenExchange:
    """A server's RFC 8693 token exchange (docs/mcp.md). As a setting given to the services,
    `client_secret` None keeps the stored one; in the table, it is the decrypted secret."""

    token_url: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    audience: str = ""
    scope: str = ""
    subject_token_type: str = ACCESS_TOKEN_TYPE


def token_exchange_of(server: McpServer, *, with_secret: bool = False) -> TokenExchange | None:
    """The server's token exchange, or None; its secret decrypted only `with_secret`."""
    if not server.exchange_token_url:
        return None
    return TokenExchange(
        token_url=server.exchange_token_url,
        client_id=server.exchange_client_id,
        client_secret=server.get_exchange_client_secret() if with_secret else None,
        audience=server.exchange_audience,
        scope=server.exchange_scope,
        subject_token_type=server.exchange_subject_token_type,
    )


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """A server's OAuth client credentials grant (RFC 6749 §4.4): the gateway gets a token as
    itself. As a setting given to the services, `client_secret` None keeps the stored one; in the
    table, it is the decrypted secret."""

    token_url: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    scope: str = ""
    audience: str = ""


def client_credentials_of(
    server: McpServer, *, with_secret: bool = False
) -> ClientCredentials | None:
    """The server's client credentials grant, or None; its secret decrypted only `with_secret`."""
    if not server.oauth_token_url:
        return None
    return ClientCredentials(
        token_url=server.oauth_token_url,
        client_id=server.oauth_client_id,
        client_secret=server.get_oauth_client_secret() if with_secret else None,
        scope=server.oauth_scope,
        audience=server.oauth_audience,
    )


@dataclass(frozen=True, slots=True)
class Upstream:
    """One upstream server as a call needs it; `headers` hold the decrypted credential."""

    id: int
    tenant_id: int
    name: str
    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    timeout_seconds: float
    max_result_bytes: int
    result_injection: str
    prices: tuple[tuple[str, Decimal], ...] = ()  # (tool or "*", USD per call)
    exchange: TokenExchange | None = None
    client_credentials: ClientCredentials | None = None

    @property
    def credential_kind(self) -> str:
        """How the gateway authenticates to the server (the audit record says it)."""
        if self.exchange is not None:
            return "token_exchange"
        if self.client_credentials is not None:
            return "client_credentials"
        return "static" if self.headers else "none"

    def price_of(self, tool: str) -> Decimal:
        """What one call of `tool` costs (0: it has no price)."""
        found = dict(self.prices)
        return found.get(tool, found.get(EVERY_PRICED_TOOL, Decimal(0)))


@dataclass(frozen=True, slots=True)
class Grant:
    tools: frozenset[str] | None  # None: every tool
    calls_per_minute: int | None
    constraints: Mapping[str, Mapping[str, tuple[Any, ...]]]

    def allows(self, tool: str) -> bool:
        return self.tools is None or tool in self.tools

    def narrowed(self, other: Grant) -> Grant:
        """What both grants allow: a key's grant within its team's."""
        if self.tools is None or other.tools is None:
            tools = other.tools if self.tools is None else self.tools
        else:
            tools = self.tools & other.tools
        limits = [n for n in (self.calls_per_minute, other.calls_per_minute) if n is not None]
        constraints: dict[str, dict[str, tuple[Any, ...]]] = {}
        for source in (self.constraints, other.constraints):
            for tool, arguments in source.items():
                held = constraints.setdefault(tool, {})
                for argument, allowed in arguments.items():
                    if argument in held:
                        allowed = tuple(v for v in held[argument] if v in allowed)
                    held[argument] = allowed
        return Grant(tools, min(limits) if limits else None, constraints)

    def refusal(self, tool: str, arguments: Mapping[str, Any]) -> str | None:
        """Why these arguments are not allowed for `tool`, or None."""
        for argument, allowed in self.constraints.get(tool, {}).items():
            if arguments.get(argument) not in allowed:
                shown = ", ".join(repr(v) for v in allowed) or "nothing"
                return f"argument {argument!r} must be one of {shown} for this key"
        return None


@dataclass(frozen=True, slots=True)
class Access:
    upstream: Upstream
    grant: Grant


@dataclass
class McpTable:
    servers: dict[int, tuple[Upstream, ...]]  # tenant id -> its active servers
    team_grants: dict[tuple[int, int], Grant]  # (server id, team id)
    key_grants: dict[tuple[int, int], Grant]  # (server id, key id)
    keys_with_grants: frozenset[int] = frozenset()

    def access(self, identity: KeyIdentity) -> list[Access]:
        """The servers this key may reach and what it may call there (deny by default: a
        server without a grant for the key's team is not there at all; a key with grants of its
        own reaches only the servers they name, within its team's)."""
        found = []
        own = identity.key_id in self.keys_with_grants
        for upstream in self.servers.get(identity.tenant_id, ()):
            team = self.team_grants.get((upstream.id, identity.team_id))
            if team is None:
                continue
            key = self.key_grants.get((upstream.id, identity.key_id))
            if own and key is None:
                continue
            grant = team if key is None else team.narrowed(key)
            if grant.tools is None or grant.tools:
                found.append(Access(upstream, grant))
        return found


def _headers(server: McpServer) -> tuple[tuple[str, str], ...]:
    credential = server.get_credential()
    if not credential:
        return ()
    if server.credential_header == "authorization":
        return (("authorization", f"Bearer {credential}"),)
    return ((server.credential_header, credential),)


def _grant(row: McpToolGrant) -> Grant:
    tools = None if EVERY_TOOL in row.tools else frozenset(row.tools)
    constraints = {
        tool: {argument: tuple(allowed) for argument, allowed in arguments.items()}
        for tool, arguments in (row.argument_constraints or {}).items()
    }
    return Grant(tools, row.calls_per_minute, constraints)


def upstream_of(server: McpServer) -> Upstream:
    """A server as a call needs it (credentials decrypted)."""
    return Upstream(
        id=server.id,
        tenant_id=server.tenant_id,
        name=server.name,
        url=server.url,
        headers=_headers(server),
        timeout_seconds=server.timeout_seconds,
        max_result_bytes=server.max_result_bytes,
        result_injection=server.result_injection,
        prices=tuple((tool, Decimal(price)) for tool, price in (server.tool_prices or {}).items()),
        exchange=token_exchange_of(server, with_secret=True),
        client_credentials=client_credentials_of(server, with_secret=True),
    )


def load_mcp_table() -> McpTable:
    servers: dict[int, list[Upstream]] = defaultdict(list)
    for server in McpServer.objects.filter(is_active=True).order_by("name"):
        try:
            upstream = upstream_of(server)
        except InvalidToken:
            # As for providers (routing/table.py): one server's secret sealed with a key this
            # worker lacks must not take every tenant's tools down; that server is left out.
            logger.error(
                "MCP server %s: a secret of it cannot be decrypted with GATEWAY_CREDENTIAL_KEYS; "
                "it is left out",
                server.name,
            )
            continue
        servers[server.tenant_id].append(upstream)
    team_grants, key_grants = {}, {}
    for row in McpToolGrant.objects.filter(server__is_active=True):
        if row.team_id is not None:
            team_grants[(row.server_id, row.team_id)] = _grant(row)
        elif row.api_key_id is not None:
            key_grants[(row.server_id, row.api_key_id)] = _grant(row)
    return McpTable(
        servers={tenant: tuple(found) for tenant, found in servers.items()},
        team_grants=team_grants,
        key_grants=key_grants,
        keys_with_grants=frozenset(key for _, key in key_grants),
    )


def mcp_table_cache() -> Snapshot[McpTable]:
    return Snapshot(load_mcp_table, name="MCP table")

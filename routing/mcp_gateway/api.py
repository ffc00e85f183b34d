"""MCP servers and tool grants in the management API (`/api/v1/tenants/{slug}/mcp/…`).

The same services as the YAML, with the admin key as the actor. POST creates (409 if the name is
taken), PATCH updates (404 if absent), PUT sets a team's or key's grant; the credential is
write-only (never returned), and so are the client secrets of the token exchange and of the
client credentials.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from gateway_site.api.common import (
    key_or_404,
    one_or_404,
    scope_of,
    team_or_404,
    tenant_or_404,
)
from gateway_site.api.errors import ApiError, conflict
from gateway_site.bounds import StorableInput
from routing.mcp_gateway import selectors, services
from routing.mcp_gateway.models import ACCESS_TOKEN_TYPE, McpServer, McpToolGrant
from tenants.models import ApiKey, Team, Tenant

router = Router(tags=["mcp"])


class TokenExchangeIn(Schema, StorableInput):
    """RFC 8693 on behalf of the caller; `client_secret` is write-only (omitted: kept)."""

    model_config = ConfigDict(extra="forbid")

    token_url: str = Field(max_length=500)
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str | None = Field(default=None, max_length=4000)
    audience: str = Field(default="", max_length=500)
    scope: str = Field(default="", max_length=500)
    subject_token_type: str = Field(default=ACCESS_TOKEN_TYPE, max_length=100)


class TokenExchangeOut(Schema):
    token_url: str
    client_id: str
    client_secret_set: bool
    audience: str
    scope: str
    subject_token_type: str


class ClientCredentialsIn(Schema, StorableInput):
    """RFC 6749 §4.4 as the gateway itself; `client_secret` is write-only (omitted: kept)."""

    model_config = ConfigDict(extra="forbid")

    token_url: str = Field(max_length=500)
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str | None = Field(default=None, max_length=4000)
    scope: str = Field(default="", max_length=500)
    audience: str = Field(default="", max_length=500)


class ClientCredentialsOut(Schema):
    token_url: str
    client_id: str
    client_secret_set: bool
    scope: str
    audience: str


class ServerIn(Schema, StorableInput):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    url: str = Field(max_length=500)
    credential: str | None = Field(default=None, max_length=4000)
    credential_header: str = Field(default="authorization", max_length=64)
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    max_result_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    result_injection: Literal["block", "flag"] = "block"
    tool_prices: dict[str, Decimal] = Field(default={}, max_length=500)  # USD per call
    token_exchange: TokenExchangeIn | None = None
    client_credentials: ClientCredentialsIn | None = None


class ServerPatch(Schema, StorableInput):
    """Only the fields sent change; `credential` omitted keeps the stored one."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=500)
    credential: str | None = Field(default=None, max_length=4000)
    credential_header: str | None = Field(default=None, max_length=64)
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)
    max_result_bytes: int | None = Field(default=None, ge=1024, le=64 * 1024 * 1024)
    result_injection: Literal["block", "flag"] | None = None
    tool_prices: dict[str, Decimal] | None = Field(default=None, max_length=500)
    # Sent as null: token exchange (client credentials) off; omitted: unchanged.
    token_exchange: TokenExchangeIn | None = None
    client_credentials: ClientCredentialsIn | None = None


class GrantOut(Schema):
    team: str | None
    key_id: int | None
    tools: list[str]
    calls_per_minute: int | None
    argument_constraints: dict[str, Any]


class ServerOut(Schema):
    name: str
    url: str
    credential_set: bool
    credential_header: str
    timeout_seconds: float
    max_result_bytes: int
    result_injection: str
    tool_prices: dict[str, str]
    token_exchange: TokenExchangeOut | None
    client_credentials: ClientCredentialsOut | None
    grants: list[GrantOut]


class GrantIn(Schema, StorableInput):
    model_config = ConfigDict(extra="forbid")

    tools: list[str] = Field(min_length=1, max_length=500)
    calls_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    argument_constraints: dict[str, dict[str, list[Any]]] = {}


def _grant_out(grant: McpToolGrant) -> GrantOut:
    return GrantOut(
        team=grant.team.slug if grant.team else None,
        key_id=grant.api_key_id,
        tools=list(grant.tools),
        calls_per_minute=grant.calls_per_minute,
        argument_constraints=dict(grant.argument_constraints or {}),
    )


def _server_out(server: McpServer) -> ServerOut:
    return ServerOut(
        name=server.name,
        url=server.url,
        credential_set=bool(server.credential_encrypted),
        credential_header=server.credential_header,
        timeout_seconds=server.timeout_seconds,
        max_result_bytes=server.max_result_bytes,
        result_injection=server.result_injection,
        tool_prices=dict(server.tool_prices or {}),
        token_exchange=(
            TokenExchangeOut(
                token_url=server.exchange_token_url,
                client_id=server.exchange_client_id,
                client_secret_set=bool(server.exchange_client_secret_encrypted),
                audience=server.exchange_audience,
                scope=server.exchange_scope,
                subject_token_type=server.exchange_subject_token_type,
            )
            if server.exchange_token_url
            else None
        ),
        client_credentials=(
            ClientCredentialsOut(
                token_url=server.oauth_token_url,
                client_id=server.oauth_client_id,
                client_secret_set=bool(server.oauth_client_secret_encrypted),
                scope=server.oauth_scope,
                audience=server.oauth_audience,
            )
            if server.oauth_token_url
            else None
        ),
        grants=[
            _grant_out(g)
            for g in selectors.mcp_grants_of(tenant_id=server.tenant_id)
            if g.server_id == server.id
        ],
    )


def _server_or_404(tenant: Tenant, name: str) -> McpServer:
    return one_or_404(
        selectors.mcp_servers_of(tenant_id=tenant.pk).filter(name=name),
        f"MCP server '{name}' of tenant '{tenant.slug}'",
    )


def _exchange(sent: TokenExchangeIn | None) -> services.TokenExchange | None:
    return services.TokenExchange(**sent.dict()) if sent is not None else None


def _client_credentials(sent: ClientCredentialsIn | None) -> services.ClientCredentials | None:
    return services.ClientCredentials(**sent.dict()) if sent is not None else None


def _refused(exc: ValidationError) -> ApiError:
    if isinstance(exc, services.McpServerRefused):
        message = str(exc.message)
        return ApiError(
            422, exc.code or "validation_error", message, [{"field": exc.field, "message": message}]
        )
    return ApiError(422, "validation_error", "; ".join(exc.messages))


@router.get(
    "/tenants/{slug}/mcp/servers",
    response=list[ServerOut],
    summary="List MCP servers and their grants",
)
def mcp_server_list(request: HttpRequest, slug: str) -> list[ServerOut]:
    tenant = tenant_or_404(request, slug)
    return [_server_out(s) for s in selectors.mcp_servers_of(tenant_id=tenant.pk)]


@router.get(
    "/tenants/{slug}/mcp/servers/{server}",
    response=ServerOut,
    summary="An MCP server and its grants",
)
def mcp_server_get(request: HttpRequest, slug: str, server: str) -> ServerOut:
    return _server_out(_server_or_404(tenant_or_404(request, slug), server))


@router.post(
    "/tenants/{slug}/mcp/servers",
    response={201: ServerOut},
    summary="Add an MCP server (an http(s) URL; the credential is write-only)",
    description=(
        "An upstream is an http(s) URL (no command, no stdio) that must pass the egress policy "
        "(422 `egress_refused`), as must a token endpoint; a taken name is a 409. Nothing is "
        "callable until a team is granted tools on it. Secrets are write-only. docs/mcp.md."
    ),
)
def mcp_server_create(request: HttpRequest, slug: str, payload: ServerIn) -> Status[ServerOut]:
    tenant = tenant_or_404(request, slug)
    if selectors.mcp_servers_of(tenant_id=tenant.pk).filter(name=payload.name).exists():
        raise conflict(f"MCP server '{payload.name}' of tenant '{slug}' already exists.")
    fields = payload.dict(exclude={"token_exchange", "client_credentials"})
    try:
        saved = services.mcp_server_upsert(
            actor=scope_of(request).actor,
            tenant=tenant,
            token_exchange=_exchange(payload.token_exchange),
            client_credentials=_client_credentials(payload.client_credentials),
            **fields,
        )
    except ValidationError as exc:
        raise _refused(exc) from exc
    return Status(201, _server_out(saved))


@router.patch(
    "/tenants/{slug}/mcp/servers/{server}",
    response=ServerOut,
    summary="Change an MCP server",
    description=(
        "Moving `url` to another scheme, host or port needs the credential again (422 "
        "`credential_required`); every URL must pass the egress policy (422 `egress_refused`)."
    ),
)
def mcp_server_update(
    request: HttpRequest, slug: str, server: str, payload: ServerPatch
) -> ServerOut:
    found = _server_or_404(tenant_or_404(request, slug), server)
    sent = payload.dict(exclude_unset=True, exclude={"token_exchange", "client_credentials"})
    fields: dict[str, Any] = {
        "url": found.url,
        "credential_header": found.credential_header,
        "timeout_seconds": found.timeout_seconds,
        "max_result_bytes": found.max_result_bytes,
        "result_injection": found.result_injection,
        **{name: value for name, value in sent.items() if value is not None},
    }
    fields["credential"] = sent.get("credential")
    fields["token_exchange"] = (
        _exchange(payload.token_exchange)
        if "token_exchange" in payload.model_fields_set
        else services.token_exchange_of(found)
    )
    fields["client_credentials"] = (
        _client_credentials(payload.client_credentials)
        if "client_credentials" in payload.model_fields_set
        else services.client_credentials_of(found)
    )
    try:
        saved = services.mcp_server_upsert(
            actor=scope_of(request).actor, tenant=found.tenant, name=found.name, **fields
        )
    except ValidationError as exc:
        raise _refused(exc) from exc
    return _server_out(saved)


def _grant_put(
    request: HttpRequest,
    tenant: Tenant,
    server: str,
    payload: GrantIn,
    *,
    team: Team | None = None,
    api_key: ApiKey | None = None,
) -> GrantOut:
    found = _server_or_404(tenant, server)
    try:
        grant = services.mcp_grant_set(
            actor=scope_of(request).actor,
            server=found,
            team=team,
            api_key=api_key,
            tools=payload.tools,
            calls_per_minute=payload.calls_per_minute,
            argument_constraints=payload.argument_constraints,
        )
    except ValidationError as exc:
        raise _refused(exc) from exc
    return _grant_out(grant)


@router.put(
    "/tenants/{slug}/mcp/servers/{server}/teams/{team}",
    response=GrantOut,
    summary="Set which tools of the server a team's keys may call (deny by default)",
)
def mcp_team_grant_put(
    request: HttpRequest, slug: str, server: str, team: str, payload: GrantIn
) -> GrantOut:
    tenant = tenant_or_404(request, slug)
    return _grant_put(request, tenant, server, payload, team=team_or_404(tenant, team))


@router.put(
    "/tenants/{slug}/mcp/servers/{server}/keys/{key_id}",
    response=GrantOut,
    summary="Narrow one key to some of its team's tools on the server",
)
def mcp_key_grant_put(
    request: HttpRequest, slug: str, server: str, key_id: int, payload: GrantIn
) -> GrantOut:
    tenant = tenant_or_404(request, slug)
    return _grant_put(request, tenant, server, payload, api_key=key_or_404(tenant, key_id))

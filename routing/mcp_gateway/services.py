"""Writes for upstream MCP servers and tool grants."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.activity.services import SYSTEM, Actor, activity_record
from gateway_site.crypto import decrypt_secret, encrypt_secret
from routing.core.egress import EgressRefused, url_origin
from routing.egress import egress_url_check
from routing.mcp_gateway.models import (
    ACCESS_TOKEN_TYPE,
    SERVER_NAME,
    SUBJECT_TOKEN_TYPES,
    McpServer,
    McpToolGrant,
    ResultInjection,
)

# The settings as the services take them (the API and the YAML build them).
from routing.mcp_gateway.table import ClientCredentials as ClientCredentials
from routing.mcp_gateway.table import TokenExchange as TokenExchange
from routing.mcp_gateway.table import client_credentials_of as client_credentials_of
from routing.mcp_gateway.table import token_exchange_of as token_exchange_of
from tenants.models import ApiKey, Team, Tenant

MAX_PRICE_USD = Decimal(1000)


class McpServerRefused(ValidationError):
    """A server write the service refuses: `code` says why, `field` names the input at fault."""

    def __init__(self, *, code: str, field: str, message: str) -> None:
        super().__init__(message, code=code)
        self.field = field


def mcp_url_check(url: str) -> None:
    """Raise `McpServerRefused` unless `url` is an http(s) URL the egress policy allows.

    There is no other kind of upstream: no stdio, no command, nothing the gateway would run."""
    try:
        egress_url_check(url)
    except EgressRefused as refusal:
        raise McpServerRefused(
            code="egress_refused",
            field="url",
            message=f"url is not allowed by the egress policy: {refusal}",
        ) from None


def _refused(field: str, message: str, code: str = "invalid_value") -> McpServerRefused:
    return McpServerRefused(code=code, field=field, message=message)


def _keep_or_set_secret(
    server: McpServer,
    *,
    field: str,
    old_url: str,
    url: str,
    given: str | None,
    label: str = "",
) -> bool:
    """Set the encrypted secret held in `<field>_encrypted` when `given` changes it; whether it
    changed. A stored secret is not sent to another origin: moving needs it again. `label`:
    the input's name in a refusal (default `field`)."""
    stored = getattr(server, f"{field}_encrypted")
    label = label or field
    if given is None:
        if stored and old_url and url_origin(old_url) != url_origin(url):
            raise _refused(
                label,
                f"{label}: the URL moves to another scheme, host or port: send it again (the "
                "stored one is not sent elsewhere)",
                "credential_required",
            )
        return False
    if stored and decrypt_secret(stored) == given:
        return False
    setattr(server, f"{field}_encrypted", encrypt_secret(given) if given else "")
    return True


def clean_prices(value: Mapping[str, Any]) -> dict[str, str]:
    """{tool or "*": price in USD per call} as exact decimal strings, or McpServerRefused."""
    prices = {}
    for tool, price in value.items():
        try:
            amount = Decimal(str(price))
        except ArithmeticError:
            amount = Decimal(-1)
        if not isinstance(tool, str) or not tool or len(tool) > 200:
            raise _refused("tool_prices", "tool_prices: tool names (or '*') to prices")
        if not amount.is_finite() or not Decimal(0) <= amount <= MAX_PRICE_USD:
            raise _refused(
                "tool_prices", f"tool_prices[{tool!r}]: a price from 0 to {MAX_PRICE_USD} USD"
            )
        if amount.as_tuple().exponent < -10:  # type: ignore[operator]
            raise _refused("tool_prices", f"tool_prices[{tool!r}]: at most 10 decimal places")
        prices[tool] = f"{amount.normalize():f}"
    return prices


def _check_exchange(exchange: TokenExchange, credential_header: str) -> None:
    if not exchange.client_id or len(exchange.client_id) > 200:
        raise _refused("token_exchange.client_id", "token_exchange: client_id is required")
    if exchange.subject_token_type not in SUBJECT_TOKEN_TYPES:
        raise _refused(
            "token_exchange.subject_token_type",
            f"subject_token_type must be one of {', '.join(SUBJECT_TOKEN_TYPES)}",
        )
    if credential_header == "authorization":
        raise _refused(
            "credential_header",
            "with token exchange the exchanged token goes in Authorization: a static "
            "credential needs another header",
        )
    try:
        egress_url_check(exchange.token_url)
    except EgressRefused as refusal:
        raise _refused(
            "token_exchange.token_url",
            f"token_url is not allowed by the egress policy: {refusal}",
            "egress_refused",
        ) from None


def _check_client_credentials(grant: ClientCredentials) -> None:
    if not grant.client_id or len(grant.client_id) > 200:
        raise _refused("client_credentials.client_id", "client_credentials: client_id is required")
    try:
        egress_url_check(grant.token_url)
    except EgressRefused as refusal:
        raise _refused(
            "client_credentials.token_url",
            f"token_url is not allowed by the egress policy: {refusal}",
            "egress_refused",
        ) from None


@transaction.atomic
def mcp_server_upsert(
    *,
    tenant: Tenant,
    name: str,
    url: str,
    credential: str | None,
    credential_header: str = "authorization",
    timeout_seconds: float = 30,
    max_result_bytes: int = 256 * 1024,
    result_injection: str = ResultInjection.BLOCK,
    tool_prices: Mapping[str, Any] | None = None,
    token_exchange: TokenExchange | None = None,
    client_credentials: ClientCredentials | None = None,
    actor: Actor = SYSTEM,
) -> McpServer:
    """Create or update a tenant's MCP server. `credential` (and the client secrets of the
    token exchange and of the client credentials) None keeps the stored one, unless its URL
    moves to another origin (refused then: a secret is never sent where it was not given for).
    `tool_prices` None keeps the prices; `token_exchange` or `client_credentials` None turns
    that off. Raises `McpServerRefused` and changes nothing when refused."""
    if not re.match(SERVER_NAME, name) or len(name) > 64:
        raise _refused(
            "name",
            "name: lower-case letters, digits, '-' and single '_' (at most 64)",
            "invalid_name",
        )
    if result_injection not in ResultInjection.values:
        raise _refused(
            "result_injection",
            f"result_injection must be one of {', '.join(ResultInjection.values)}",
        )
    if not re.match(r"^[A-Za-z0-9-]{1,64}$", credential_header):
        raise _refused("credential_header", "not an HTTP header name")
    credential_header = credential_header.lower()
    mcp_url_check(url)
    prices = clean_prices(tool_prices) if tool_prices is not None else None
    if token_exchange is not None and client_credentials is not None:
        raise _refused(
            "client_credentials",
            "a server gets either the gateway's own token (client_credentials) or one for the "
            "end user (token_exchange), not both",
        )
    if token_exchange is not None:
        _check_exchange(token_exchange, credential_header)
    if client_credentials is not None:
        _check_client_credentials(client_credentials)
    server = McpServer.objects.select_for_update().filter(
        tenant=tenant, name=name
    ).first() or McpServer(tenant=tenant, name=name)
    credential_changed = _keep_or_set_secret(
        server, field="credential", old_url=server.url, url=url, given=credential
    )
    exchange_changed = False
    if token_exchange is not None:
        exchange_changed = _keep_or_set_secret(
            server,
            field="exchange_client_secret",
            old_url=server.exchange_token_url,
            url=token_exchange.token_url,
            given=token_exchange.client_secret,
        )
        if not server.exchange_client_secret_encrypted:
            raise _refused(
                "token_exchange.client_secret",
                "token_exchange: client_secret is required",
                "credential_required",
            )
    oauth_changed = False
    if client_credentials is not None:
        if server.credential_encrypted and credential_header == "authorization":
            raise _refused(
                "credential_header",
                "with client credentials the obtained token goes in Authorization: a static "
                "credential needs another header",
            )
        oauth_changed = _keep_or_set_secret(
            server,
            field="oauth_client_secret",
            old_url=server.oauth_token_url,
            url=client_credentials.token_url,
            given=client_credentials.client_secret,
            label="client_credentials.client_secret",
        )
        if not server.oauth_client_secret_encrypted:
            raise _refused(
                "client_credentials.client_secret",
                "client_credentials: client_secret is required",
                "credential_required",
            )
    server.url = url
    server.credential_header = credential_header
    server.timeout_seconds = timeout_seconds
    server.max_result_bytes = max_result_bytes
    server.result_injection = result_injection
    if prices is not None:
        server.tool_prices = prices
    _set_exchange(server, token_exchange)
    _set_client_credentials(server, client_credentials)
    created = server.pk is None
    server.save()
    activity_record(
        actor=actor,
        action="mcp_server.create" if created else "mcp_server.update",
        target=server,
        tenant_id=tenant.id,
        details={  # never a secret itself
            "url": url,
            "credential_changed": credential_changed,
            "max_result_bytes": max_result_bytes,
            "result_injection": result_injection,
            "tool_prices": server.tool_prices,
            "token_exchange": server.exchange_token_url or None,
            "exchange_secret_changed": exchange_changed,
            "client_credentials": server.oauth_token_url or None,
            "client_secret_changed": oauth_changed,
        },
    )
    return server


def _set_exchange(server: McpServer, exchange: TokenExchange | None) -> None:
    if exchange is None:
        server.exchange_client_secret_encrypted = ""
    server.exchange_token_url = exchange.token_url if exchange else ""
    server.exchange_client_id = exchange.client_id if exchange else ""
    server.exchange_audience = exchange.audience if exchange else ""
    server.exchange_scope = exchange.scope if exchange else ""
    server.exchange_subject_token_type = (
        exchange.subject_token_type if exchange else ACCESS_TOKEN_TYPE
    )


def _set_client_credentials(server: McpServer, grant: ClientCredentials | None) -> None:
    if grant is None:
        server.oauth_client_secret_encrypted = ""
    server.oauth_token_url = grant.token_url if grant else ""
    server.oauth_client_id = grant.client_id if grant else ""
    server.oauth_scope = grant.scope if grant else ""
    server.oauth_audience = grant.audience if grant else ""


@transaction.atomic
def mcp_tool_price_set(
    *, server: McpServer, tool: str, price: Decimal | None, actor: Actor = SYSTEM
) -> McpServer:
    """Set (or, with None, remove) one tool's price per call on a server."""
    locked = McpServer.objects.select_for_update().get(pk=server.pk)
    prices = dict(locked.tool_prices or {})
    if price is None:
        prices.pop(tool, None)
    else:
        prices.update(clean_prices({tool: price}))
    locked.tool_prices = prices
    locked.save(update_fields=["tool_prices", "updated_at"])
    activity_record(
        actor=actor,
        action="mcp_server.price",
        target=locked,
        tenant_id=locked.tenant_id,
        details={"tool": tool, "price_usd": prices.get(tool)},
    )
    return locked


def _clean_constraints(value: Any) -> dict[str, dict[str, list[Any]]]:
    if not isinstance(value, dict):
        raise ValidationError("argument_constraints: {tool: {argument: [allowed values]}}")
    for tool, arguments in value.items():
        if not isinstance(arguments, dict) or not all(
            isinstance(allowed, list) for allowed in arguments.values()
        ):
            raise ValidationError(f"argument_constraints[{tool!r}]: {{argument: [values]}}")
    return value


@transaction.atomic
def mcp_grant_set(
    *,
    server: McpServer,
    team: Team | None = None,
    api_key: ApiKey | None = None,
    tools: list[str],
    calls_per_minute: int | None = None,
    argument_constraints: dict[str, dict[str, list[Any]]] | None = None,
    actor: Actor = SYSTEM,
) -> McpToolGrant:
    """Set what a team (or one key) may call on a server: replaces that holder's grant."""
    if (team is None) == (api_key is None):
        raise ValidationError("grant tools to a team or to a key, not both")
    holder = team or api_key
    assert holder is not None
    if holder.tenant_id != server.tenant_id:
        raise ValidationError("the server belongs to another tenant")
    if not tools or not all(isinstance(t, str) and t for t in tools):
        raise ValidationError("tools: a list of tool names, or ['*']")
    if calls_per_minute is not None and calls_per_minute < 1:
        raise ValidationError("calls_per_minute: at least 1 (leave it out for no limit)")
    constraints = _clean_constraints(argument_constraints or {})
    grant, created = McpToolGrant.objects.update_or_create(
        server=server,
        team=team,
        api_key=api_key,
        defaults={
            "tenant_id": server.tenant_id,
            "tools": sorted(set(tools)),
            "calls_per_minute": calls_per_minute,
            "argument_constraints": constraints,
        },
    )
    activity_record(
        actor=actor,
        action="mcp_grant.create" if created else "mcp_grant.update",
        target=grant,
        tenant_id=server.tenant_id,
        details={
            "server": server.name,
            "team": team.slug if team else None,
            "key": api_key.prefix if api_key else None,
            "tools": grant.tools,
            "calls_per_minute": calls_per_minute,
        },
    )
    return grant


def key_grants_carry(*, key: ApiKey, successor: ApiKey, **_: Any) -> None:
    """A rotated key's successor has the same tool grants (tenants.signals): a key's grants
    narrow its team's, so a successor without them would reach more."""
    for grant in McpToolGrant.objects.filter(api_key=key):
        grant.pk = None
        grant.api_key = successor
        grant.save()

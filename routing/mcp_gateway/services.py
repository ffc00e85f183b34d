"""Writes for upstream MCP servers and tool grants."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.activity.services import SYSTEM, Actor, activity_record
from routing.core.egress import EgressRefused, url_origin
from routing.egress import egress_url_check
from routing.mcp_gateway.models import SERVER_NAME, McpServer, McpToolGrant, ResultInjection
from tenants.models import ApiKey, Team, Tenant


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
    actor: Actor = SYSTEM,
) -> McpServer:
    """Create or update a tenant's MCP server. `credential` None keeps the stored one, unless the
    URL moves to another origin (refused then: a credential is never sent where it was not
    given for). Raises `McpServerRefused` and changes nothing when refused."""
    if not re.match(SERVER_NAME, name) or len(name) > 64:
        raise McpServerRefused(
            code="invalid_name",
            field="name",
            message="name: lower-case letters, digits, '-' and single '_' (at most 64)",
        )
    if result_injection not in ResultInjection.values:
        raise McpServerRefused(
            code="invalid_value",
            field="result_injection",
            message=f"result_injection must be one of {', '.join(ResultInjection.values)}",
        )
    if not re.match(r"^[A-Za-z0-9-]{1,64}$", credential_header):
        raise McpServerRefused(
            code="invalid_value", field="credential_header", message="not an HTTP header name"
        )
    mcp_url_check(url)
    server = McpServer.objects.select_for_update().filter(
        tenant=tenant, name=name
    ).first() or McpServer(tenant=tenant, name=name)
    moved = server.pk is not None and url_origin(server.url) != url_origin(url)
    if moved and credential is None and server.credential_encrypted:
        raise McpServerRefused(
            code="credential_required",
            field="credential",
            message=(
                "url moves this server to another scheme, host or port: send its credential "
                "again (the stored one is not sent elsewhere)"
            ),
        )
    server.url = url
    server.credential_header = credential_header.lower()
    server.timeout_seconds = timeout_seconds
    server.max_result_bytes = max_result_bytes
    server.result_injection = result_injection
    credential_changed = credential is not None and (
        not server.credential_encrypted or server.get_credential() != credential
    )
    if credential_changed:
        server.set_credential(credential or "")
    created = server.pk is None
    server.save()
    activity_record(
        actor=actor,
        action="mcp_server.create" if created else "mcp_server.update",
        target=server,
        tenant_id=tenant.id,
        details={  # never the credential itself
            "url": url,
            "credential_changed": credential_changed,
            "max_result_bytes": max_result_bytes,
            "result_injection": result_injection,
        },
    )
    return server


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

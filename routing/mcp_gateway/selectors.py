"""Reads of MCP servers, grants and tool calls: always scoped by tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditRecord
from routing.mcp_gateway.models import ENDPOINT, McpServer, McpToolGrant


def mcp_servers_exist() -> bool:
    """Whether any tenant has an MCP server (a worker loads the MCP SDK at start-up if so)."""
    return McpServer.objects.exists()


def mcp_servers_of(*, tenant_id: int) -> QuerySet[McpServer]:
    return McpServer.objects.filter(tenant_id=tenant_id).order_by("name")


def mcp_grants_of(*, tenant_id: int) -> QuerySet[McpToolGrant]:
    return (
        McpToolGrant.objects.filter(tenant_id=tenant_id)
        .select_related("server", "team", "api_key")
        .order_by("server__name", "team__slug", "api_key__name")
    )


def mcp_tool_calls(*, tenant_id: int, limit: int = 50) -> QuerySet[AuditRecord]:
    """The tenant's latest tool calls, newest first."""
    return (
        AuditRecord.objects.filter(tenant_id=tenant_id, endpoint=ENDPOINT)
        .select_related("team", "api_key")
        .order_by("-id")[:limit]
    )

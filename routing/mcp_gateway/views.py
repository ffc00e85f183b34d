"""The console's MCP page: a tenant admin sees the servers, who may call which tools, and the
latest tool calls (compliance finds every call in the audit search)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from gateway_site.console.access import console_context, console_view
from routing.mcp_gateway import selectors
from tenants.models import Role


@console_view(Role.TENANT_ADMIN)
def overview(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    return render(
        request,
        "mcp_gateway/overview.html",
        {
            "servers": selectors.mcp_servers_of(tenant_id=tenant.id),
            "grants": selectors.mcp_grants_of(tenant_id=tenant.id),
            "calls": selectors.mcp_tool_calls(tenant_id=tenant.id),
        },
    )

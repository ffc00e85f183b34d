"""The console's MCP page: a tenant admin sees the servers, their tools with prices and who may
call each, the grants, and the latest tool calls (compliance finds every call in the audit
search and export); and sets a tool's price."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from routing.mcp_gateway import selectors, services
from routing.mcp_gateway.forms import ToolPriceForm
from routing.mcp_gateway.inventory import server_inventory
from tenants.models import Role


def _page(request: HttpRequest, price_form: ToolPriceForm | None = None) -> HttpResponse:
    tenant = console_context(request).tenant
    grants = list(selectors.mcp_grants_of(tenant_id=tenant.id))
    asked = request.GET.get("list", "")  # the one server whose own tool list is asked for
    inventories = [
        server_inventory(
            server=server,
            grants=[g for g in grants if g.server_id == server.id],
            ask_server=server.name == asked,
        )
        for server in selectors.mcp_servers_of(tenant_id=tenant.id)
    ]
    return render(
        request,
        "mcp_gateway/overview.html",
        {
            "inventories": inventories,
            "grants": grants,
            "calls": selectors.mcp_tool_calls(tenant_id=tenant.id),
            "price_form": price_form or ToolPriceForm(tenant=tenant),
        },
    )


@console_view(Role.TENANT_ADMIN)
def overview(request: HttpRequest) -> HttpResponse:
    return _page(request)


@console_view(Role.TENANT_ADMIN)
@require_POST
def price_save(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    form = ToolPriceForm(request.POST, tenant=tenant)
    if not form.is_valid():
        return _page(request, price_form=form)
    data = form.cleaned_data
    try:
        services.mcp_tool_price_set(
            server=data["server"],
            tool=data["tool"].strip(),
            price=data["price_usd"],
            actor=Actor.user(request.user),
        )
    except ValidationError as error:
        form.add_error("price_usd", error)
        return _page(request, price_form=form)
    what = "removed" if data["price_usd"] is None else "saved"
    messages.success(request, f"Price {what}; the gateway applies it within seconds.")
    return redirect("mcp:overview", tenant_slug=tenant.slug)

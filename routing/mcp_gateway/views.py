"""The console's MCP page: a tenant admin sees the servers, their tools with prices and who may
call each, the grants, and the latest tool calls (compliance finds every call in the audit
search and export); sets a tool's price and a server's OAuth client credentials."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from routing.mcp_gateway import selectors, services
from routing.mcp_gateway.forms import ClientCredentialsForm, ToolPriceForm
from routing.mcp_gateway.inventory import server_inventory
from routing.mcp_gateway.models import McpServer
from tenants.models import Role


def _page(
    request: HttpRequest,
    price_form: ToolPriceForm | None = None,
    credentials_form: ClientCredentialsForm | None = None,
) -> HttpResponse:
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
            "credentials_form": credentials_form or ClientCredentialsForm(tenant=tenant),
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


# The service's refusal fields, as the form names them.
_FORM_FIELDS = {
    "client_credentials.token_url": "token_url",
    "client_credentials.client_id": "client_id",
    "client_credentials.client_secret": "client_secret",
}


@console_view(Role.TENANT_ADMIN)
@require_POST
def credentials_save(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    form = ClientCredentialsForm(request.POST, tenant=tenant)
    if not form.is_valid():
        return _page(request, credentials_form=form)
    data = form.cleaned_data
    server: McpServer = data["server"]
    grant = None
    if not data["turn_off"]:
        grant = services.ClientCredentials(
            token_url=data["token_url"],
            client_id=data["client_id"].strip(),
            client_secret=data["client_secret"] or None,  # empty: the stored one
            scope=data["scope"].strip(),
            audience=data["audience"].strip(),
        )
    try:
        services.mcp_server_upsert(
            tenant=tenant,
            name=server.name,
            url=server.url,
            credential=None,
            credential_header=server.credential_header,
            timeout_seconds=server.timeout_seconds,
            max_result_bytes=server.max_result_bytes,
            result_injection=server.result_injection,
            tool_prices=None,
            token_exchange=services.token_exchange_of(server),
            client_credentials=grant,
            actor=Actor.user(request.user),
        )
    except services.McpServerRefused as refused:
        form.add_error(_FORM_FIELDS.get(refused.field), str(refused.message))
        return _page(request, credentials_form=form)
    what = "turned off" if grant is None else "saved"
    messages.success(
        request, f"Client credentials {what}; the gateway applies them within seconds."
    )
    return redirect("mcp:overview", tenant_slug=tenant.slug)

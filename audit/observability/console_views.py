"""The alerts page of the console: firing first, then recently resolved."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit.observability.selectors import alerts_for_tenant
from gateway_site.console.access import console_context, console_view
from tenants.models import Role


@console_view(Role.TENANT_ADMIN, Role.FINANCE, Role.COMPLIANCE)
def alerts(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    rows = alerts_for_tenant(tenant_id=ctx.tenant.id, include_platform=ctx.platform_admin)
    return render(request, "observability/alerts.html", {"alerts": rows})

"""The tenant overview every role lands on."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from gateway_site.console.access import ALL_ROLES, console_context, console_view
from tenants import selectors


@console_view(*ALL_ROLES)
def tenant_home(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    return render(
        request,
        "console/tenant_home.html",
        {
            "my_teams": selectors.teams_of_member(tenant=ctx.tenant, user=request.user),
            "my_key_count": selectors.keys_of_owner(tenant=ctx.tenant, user=request.user)
            .filter(revoked_at=None)
            .count(),
        },
    )

"""The routing quality page: evaluation scores per deployment and task category."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from gateway_site.console.access import console_context, console_view
from routing.evaluations.quality import quality_table
from tenants.models import Role


@console_view(Role.TENANT_ADMIN, Role.DEVELOPER, Role.FINANCE)
def scores(request: HttpRequest) -> HttpResponse:
    table = quality_table(tenant=console_context(request).tenant)
    return render(request, "evaluations/scores.html", {"table": table})

"""Console page for prices: the price in force per deployment, its history, and a new version.

Prices are platform-wide (deployments serve every tenant), so only platform admins edit them.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from audit.activity.services import Actor
from billing import selectors, services
from billing.forms import PriceForm
from billing.models import PriceSource
from billing.prices import effective_prices
from gateway_site.console.access import console_context, console_view
from routing import selectors as routing_selectors
from tenants.models import Role


@console_view(Role.PLATFORM_ADMIN)
def prices(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    deployments = routing_selectors.deployments_all().order_by("name")
    form = PriceForm(request.POST or None, deployments=deployments)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        price = services.price_set(
            actor=Actor.user(request.user),
            deployment=data["deployment"],
            input_per_mtok=data["input_per_mtok"],
            output_per_mtok=data["output_per_mtok"],
            cached_input_per_mtok=data["cached_input_per_mtok"],
            per_request_usd=data["per_request_usd"] or Decimal(0),
            per_tool_call_usd=data["tool_fees"],
            effective_from=data["effective_from"],
            source=PriceSource.CONSOLE,
        )
        messages.success(request, f"New price for {data['deployment'].name} saved: {price}.")
        return redirect("billing:prices", tenant_slug=ctx.tenant.slug)
    listed = list(deployments)
    in_force = effective_prices(listed, at=timezone.now())
    history = selectors.price_history()
    return render(
        request,
        "billing/prices.html",
        {
            "rows": [(d, in_force[d.id]) for d in listed],
            "history": history.order_by("-effective_from", "-id")[:50],
            "form": form,
        },
        status=400 if request.method == "POST" else 200,
    )

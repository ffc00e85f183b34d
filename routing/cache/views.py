"""The console's response cache page: what it served and saved, and a purge (tenant admins)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from routing.cache.forms import CachePurgeForm
from routing.cache.selectors import cache_savings
from routing.cache.services import cache_purge
from tenants.models import Role


@console_view(Role.TENANT_ADMIN)
def cache_page(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = CachePurgeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        route, prompt = form.cleaned_data["route"] or None, form.cleaned_data["prompt"] or None
        purged = cache_purge(
            actor=Actor.user(request.user), tenant=ctx.tenant, route=route, prompt=prompt
        )
        messages.success(
            request,
            f"Purged {purged.answers} cached answer(s) and {purged.questions} semantic entr(y/ies)"
            f" of {ctx.tenant.name}.",
        )
        return redirect(request.path)
    today = timezone.now().date()
    rows = cache_savings(
        tenant=ctx.tenant, start=today - timedelta(days=29), end=today + timedelta(days=1)
    )
    status = 400 if request.method == "POST" else 200
    return render(request, "response_cache/cache.html", {"rows": rows, "form": form}, status=status)

"""Console pages for limits and budgets: tenant admins edit, finance reads."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from tenants.models import Role
from tenants.quotas import selectors, services
from tenants.quotas.forms import BudgetForm, RateLimitForm
from tenants.quotas.models import Budget, RateLimit

ADMIN = Role.TENANT_ADMIN
READERS = (Role.TENANT_ADMIN, Role.FINANCE)


def _page(request: HttpRequest, limit_form: Any = None, budget_form: Any = None) -> HttpResponse:
    tenant = console_context(request).tenant
    budgets = [
        (budget, selectors.budget_status(budget=budget))
        for budget in selectors.budgets_for_tenant(tenant_id=tenant.pk).order_by("scope", "id")
    ]
    return render(
        request,
        "quotas/limits.html",
        {
            "limits": selectors.rate_limits_for_tenant(tenant_id=tenant.pk).order_by("scope", "id"),
            "budgets": budgets,
            "may_edit": console_context(request).has_role(ADMIN),
            "limit_form": limit_form or RateLimitForm(tenant=tenant),
            "budget_form": budget_form or BudgetForm(tenant=tenant),
        },
    )


@console_view(*READERS)
def limits(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _scope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "scope": data["scope"],
        "team": data.get("team"),
        "api_key": data.get("api_key"),
        "end_user": data.get("end_user") or "",
        "shadow": data.get("shadow", False),
    }


@console_view(ADMIN)
@require_POST
def limit_save(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    form = RateLimitForm(request.POST, tenant=tenant)
    if not form.is_valid():
        return _page(request, limit_form=form)
    data = form.cleaned_data
    services.rate_limit_set(
        tenant=tenant,
        **_scope(data),
        agent=data.get("agent") or "",
        requests_per_minute=data.get("requests_per_minute"),
        tokens_per_minute=data.get("tokens_per_minute"),
        max_concurrent=data.get("max_concurrent"),
        actor=Actor.user(request.user),
    )
    messages.success(request, "Rate limit saved; the gateway applies it within seconds.")
    return redirect("quotas:limits", tenant_slug=tenant.slug)


@console_view(ADMIN)
@require_POST
def budget_save(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    form = BudgetForm(request.POST, tenant=tenant)
    if not form.is_valid():
        return _page(request, budget_form=form)
    data = form.cleaned_data
    try:
        services.budget_set(
            tenant=tenant,
            **_scope(data),
            amount_usd=data["amount_usd"],
            period=data["period"],
            timezone=data["timezone"],
            alert_thresholds_pct=data["alert_thresholds_pct"],
            actor=Actor.user(request.user),
        )
    except ValidationError as error:
        form.add_error("timezone", error)
        return _page(request, budget_form=form)
    messages.success(request, "Budget saved; spend already in its window still counts.")
    return redirect("quotas:limits", tenant_slug=tenant.slug)


@console_view(ADMIN)
@require_POST
def rule_delete(request: HttpRequest, kind: str, rule_id: int) -> HttpResponse:
    tenant = console_context(request).tenant
    rule: RateLimit | Budget | None = None
    if kind == "limit":
        rule = selectors.rate_limit_of_tenant(tenant_id=tenant.pk, limit_id=rule_id).first()
    elif kind == "budget":
        rule = selectors.budget_of_tenant(tenant_id=tenant.pk, budget_id=rule_id).first()
    if rule is None:
        raise Http404
    services.rule_remove(rule=rule, actor=Actor.user(request.user))
    messages.success(request, f"Removed the {rule}.")
    return redirect("quotas:limits", tenant_slug=tenant.slug)

"""The cost approvals page: budget owners (finance, tenant admins) approve or refuse held requests;
tenant admins set the thresholds (tenants/quotas/approvals.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from tenants.models import Role
from tenants.quotas import approvals
from tenants.quotas.forms import ApprovalDecisionForm, ApprovalRuleForm

OWNERS = (Role.FINANCE, Role.TENANT_ADMIN)
ADMIN = Role.TENANT_ADMIN


def _page(request: HttpRequest, rule_form: Any = None, status: int = 200) -> HttpResponse:
    ctx = console_context(request)
    tenant_id = ctx.tenant.pk
    return render(
        request,
        "quotas/approvals.html",
        {
            "pending": approvals.approvals_pending(tenant_id=tenant_id),
            "decided": approvals.approvals_of(tenant_id=tenant_id).exclude(status="pending")[:50],
            "rules": approvals.approval_rules_of(tenant_id=tenant_id).order_by("scope", "id"),
            "may_edit": ctx.has_role(ADMIN),
            "rule_form": rule_form or ApprovalRuleForm(tenant=ctx.tenant),
            "header": approvals.APPROVAL_HEADER,
        },
        status=status,
    )


@console_view(*OWNERS)
def approvals_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@console_view(*OWNERS)
@require_POST
def decide(request: HttpRequest, approval_id: str) -> HttpResponse:
    tenant = console_context(request).tenant
    found = approvals.approvals_of(tenant_id=tenant.pk).filter(public_id=approval_id[:40]).first()
    if found is None:
        raise Http404("no such approval in this tenant")
    form = ApprovalDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or refuse.")
        return redirect("quotas:approvals", tenant_slug=tenant.slug)
    approve = form.cleaned_data["decision"] == "approve"
    try:
        approvals.cost_approval_decide(
            approval=found,
            approve=approve,
            actor=Actor.user(request.user),
            note=form.cleaned_data.get("note") or "",
        )
    except approvals.ApprovalError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"Approved {found.public_id}: the client's retry goes through once."
            if approve
            else f"Refused {found.public_id}.",
        )
    return redirect("quotas:approvals", tenant_slug=tenant.slug)


@console_view(ADMIN)
@require_POST
def rule_save(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    form = ApprovalRuleForm(request.POST, tenant=tenant)
    if not form.is_valid():
        return _page(request, rule_form=form, status=400)
    data = form.cleaned_data
    approvals.approval_rule_set(
        tenant=tenant,
        scope=data["scope"],
        team=data.get("team"),
        api_key=data.get("api_key"),
        threshold_usd=data["threshold_usd"],
        shadow=data.get("shadow", False),
        actor=Actor.user(request.user),
    )
    messages.success(request, "Threshold saved; the gateway applies it within seconds.")
    return redirect("quotas:approvals", tenant_slug=tenant.slug)


@console_view(ADMIN)
@require_POST
def rule_delete(request: HttpRequest, approval_rule_id: int) -> HttpResponse:
    tenant = console_context(request).tenant
    rule = approvals.approval_rules_of(tenant_id=tenant.pk).filter(pk=approval_rule_id).first()
    if rule is None:
        raise Http404
    approvals.approval_rule_remove(rule=rule, actor=Actor.user(request.user))
    messages.success(request, f"Removed the {rule}.")
    return redirect("quotas:approvals", tenant_slug=tenant.slug)

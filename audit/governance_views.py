"""The tenant's audit governance in the console: its audit policy, legal holds and two-person
erasure requests, under /console/t/<slug>/compliance/. The writes are the audit services' own
(which keep the activity log); these views only check who may act and show the outcome."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit import erasure_requests, selectors
from audit.activity.services import Actor
from audit.governance_forms import AuditPolicyForm, ErasureRequestForm, LegalHoldForm
from audit.models import AuditPolicy, ErasureStatus
from audit.services import AuditError, audit_policy_set, legal_hold_place, legal_hold_release
from gateway_site.console.access import console_context, console_view
from tenants.models import Role

GOVERNANCE = (Role.TENANT_ADMIN, Role.COMPLIANCE)


@console_view(*GOVERNANCE)
def policy(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    current = selectors.audit_policy_of(tenant_id=ctx.tenant.pk)
    initial = {
        "content_mode": current.content_mode if current else AuditPolicy().content_mode,
        "retention_days": current.retention_days if current else AuditPolicy().retention_days,
    }
    form = AuditPolicyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        audit_policy_set(
            tenant=ctx.tenant,
            content_mode=form.cleaned_data["content_mode"],
            retention_days=form.cleaned_data["retention_days"],
            actor=Actor.user(request.user),
        )
        messages.success(request, "Audit policy saved.")
        return redirect("compliance:policy", tenant_slug=ctx.tenant.slug)
    return render(
        request,
        "audit/policy.html",
        {"form": form, "current": current},
        status=400 if request.method == "POST" else 200,
    )


@console_view(Role.COMPLIANCE)
def holds(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = LegalHoldForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            legal_hold_place(tenant=ctx.tenant, actor=Actor.user(request.user), **form.cleaned_data)
        except AuditError as refused:
            form.add_error("reason", str(refused))
        else:
            messages.success(request, "Legal hold placed: its records will not be purged.")
            return redirect("compliance:holds", tenant_slug=ctx.tenant.slug)
    return render(
        request,
        "audit/holds.html",
        {"form": form, "holds": selectors.legal_holds_of(tenant_id=ctx.tenant.pk)},
        status=400 if request.method == "POST" else 200,
    )


@console_view(Role.COMPLIANCE)
@require_POST
def hold_release(request: HttpRequest, hold_id: int) -> HttpResponse:
    ctx = console_context(request)
    hold = selectors.legal_hold_of(tenant_id=ctx.tenant.pk, hold_id=hold_id)
    if hold is None:
        raise Http404("no such hold")
    if hold.released_at is None:
        legal_hold_release(hold=hold, actor=Actor.user(request.user))
        messages.success(request, "Legal hold released.")
    return redirect("compliance:holds", tenant_slug=ctx.tenant.slug)


def _erasure_page(request: HttpRequest, form: ErasureRequestForm, status: int) -> HttpResponse:
    ctx = console_context(request)
    listed = selectors.erasure_requests_of(tenant_id=ctx.tenant.pk)
    return render(
        request,
        "audit/erasure.html",
        {"form": form, "requests": listed, "pending": ErasureStatus.PENDING},
        status=status,
    )


@console_view(Role.COMPLIANCE)
def erasure(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = ErasureRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            erasure_requests.erasure_request_create(
                tenant=ctx.tenant, user=request.user, **form.cleaned_data
            )
        except AuditError as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, "Erasure requested: another person must approve it.")
            return redirect("compliance:erasure", tenant_slug=ctx.tenant.slug)
    return _erasure_page(request, form, 400 if request.method == "POST" else 200)


@console_view(Role.COMPLIANCE)
@require_POST
def erasure_decide(request: HttpRequest, erasure_id: int, decision: str) -> HttpResponse:
    ctx = console_context(request)
    asked = selectors.erasure_request_of(tenant_id=ctx.tenant.pk, request_id=erasure_id)
    if asked is None or decision not in ("approve", "refuse"):
        raise Http404("no such erasure request")
    try:
        if decision == "approve":
            done = erasure_requests.erasure_request_approve(request=asked, user=request.user)
            count = done.records_erased or 0
            messages.success(
                request,
                f"Erased the content of {count} record{'' if count == 1 else 's'} of "
                f"{done.end_user}, and the copies kept elsewhere (stored responses and "
                "conversation items).",
            )
        else:
            erasure_requests.erasure_request_refuse(request=asked, user=request.user)
            messages.success(request, "Erasure request refused.")
    except AuditError as refused:
        messages.error(request, f"Not done: {refused}.")
        return _erasure_page(request, ErasureRequestForm(), 409)
    return redirect("compliance:erasure", tenant_slug=ctx.tenant.slug)

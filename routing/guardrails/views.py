"""Console pages for guardrail policies and the quarantine review queue.

Tenant admins create, edit, attach and detach their tenant's policies; compliance reads them,
their change history and runs the dry run; both review quarantined requests. Every change goes
through routing/guardrails/services.py, so it is in the activity log with its actor.
"""

from __future__ import annotations

import io

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from routing.guardrails import selectors, services
from routing.guardrails.dry_run import dry_run
from routing.guardrails.forms import (
    KIND_CHOICES,
    TEMPLATES,
    AttachForm,
    DryRunForm,
    PolicyForm,
    ReviewForm,
    spec_yaml,
)
from routing.guardrails.models import GuardrailPolicy
from routing.guardrails.review_export import training_rows, write_jsonl
from routing.selectors import routes_all
from tenants import selectors as tenant_selectors
from tenants.models import Role

ADMIN = Role.TENANT_ADMIN
READERS = (Role.TENANT_ADMIN, Role.COMPLIANCE)
REVIEWERS = (Role.TENANT_ADMIN, Role.COMPLIANCE)


def _policy(request: HttpRequest, name: str) -> GuardrailPolicy:
    found = selectors.policy_of_tenant(tenant_id=console_context(request).tenant.pk, name=name)
    if found is None:
        raise Http404("no such policy")
    return found


def _to_detail(request: HttpRequest, policy: GuardrailPolicy) -> HttpResponse:
    slug = console_context(request).tenant.slug
    return redirect("guardrails:detail", tenant_slug=slug, name=policy.name)


@console_view(*READERS)
@require_GET
def policy_list(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    return render(
        request,
        "guardrails/list.html",
        {
            "policies": selectors.policies_of_tenant(tenant_id=ctx.tenant.pk),
            "can_write": ctx.has_role(ADMIN),
            "kinds": KIND_CHOICES,
            "dry_form": DryRunForm(),
        },
    )


@console_view(ADMIN)
def policy_create(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    kind = request.GET.get("kind", "pii")
    form = PolicyForm(
        request.POST or None, initial={"spec": TEMPLATES.get(kind, ""), "is_active": True}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            policy = services.guardrail_policy_create(
                tenant=ctx.tenant,
                name=data["name"],
                spec=data["spec"],
                description=data["description"],
                is_active=data["is_active"],
                shadow=data["shadow"],
                actor=Actor.user(request.user),
            )
        except ValidationError as exc:
            form.add_error("name", exc.messages[0])
        else:
            messages.success(request, f"Policy {policy.name} created. Attach it to apply it.")
            return _to_detail(request, policy)
    return render(
        request,
        "guardrails/edit.html",
        {"form": form, "policy": None, "kinds": KIND_CHOICES, "kind": kind},
        status=400 if form.is_bound and form.errors else 200,
    )


@console_view(ADMIN)
def policy_edit(request: HttpRequest, name: str) -> HttpResponse:
    policy = _policy(request, name)
    initial = {
        "name": policy.name,
        "description": policy.description,
        "spec": spec_yaml(policy.spec),
        "is_active": policy.is_active,
        "shadow": policy.shadow,
    }
    form = PolicyForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.guardrail_policy_update(
            policy=policy,
            spec=data["spec"],
            description=data["description"],
            is_active=data["is_active"],
            shadow=data["shadow"],
            actor=Actor.user(request.user),
        )
        messages.success(request, "Saved; the gateway applies it within seconds.")
        return _to_detail(request, policy)
    return render(
        request,
        "guardrails/edit.html",
        {"form": form, "policy": policy},
        status=400 if form.is_bound and form.errors else 200,
    )


def _attach_form(request: HttpRequest, data: object = None) -> AttachForm:
    tenant = console_context(request).tenant
    return AttachForm(
        data,
        teams=tenant_selectors.teams_of_tenant(tenant=tenant),
        keys=tenant_selectors.keys_of_tenant(tenant=tenant).filter(revoked_at__isnull=True),
        routes=list(routes_all().values_list("alias", flat=True)),
    )


@console_view(*READERS)
@require_GET
def policy_detail(request: HttpRequest, name: str) -> HttpResponse:
    policy = _policy(request, name)
    ctx = console_context(request)
    return render(
        request,
        "guardrails/detail.html",
        {
            "policy": policy,
            "spec": spec_yaml(policy.spec),
            "attachments": policy.attachments.select_related("team", "api_key", "route"),
            "history": selectors.policy_history(policy=policy)[:50],
            "can_write": ctx.has_role(ADMIN),
            "attach_form": _attach_form(request) if ctx.has_role(ADMIN) else None,
        },
    )


@console_view(ADMIN)
@require_POST
def policy_attach(request: HttpRequest, name: str) -> HttpResponse:
    policy = _policy(request, name)
    form = _attach_form(request, request.POST)
    if not form.is_valid():
        for problem in form.non_field_errors() or ["Choose where to attach the policy."]:
            messages.error(request, str(problem))
        return _to_detail(request, policy)
    scope, target = form.cleaned_data["scope"], form.cleaned_data.get("target")
    kwargs: dict[str, object] = {}
    if scope == "tenant":
        kwargs["tenant"] = console_context(request).tenant
    elif scope == "team":
        kwargs["team"] = target
    elif scope == "key":
        kwargs["api_key"] = target
    else:
        kwargs["route"] = routes_all().get(alias=target)
    try:
        services.guardrail_policy_attach(policy=policy, actor=Actor.user(request.user), **kwargs)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"Policy {policy.name} attached; it applies within seconds.")
    return _to_detail(request, policy)


@console_view(ADMIN)
@require_POST
def policy_detach(request: HttpRequest, name: str, attachment_id: int) -> HttpResponse:
    policy = _policy(request, name)
    attachment = selectors.attachment_of_policy(policy=policy, attachment_id=attachment_id)
    if attachment is None:
        raise Http404("no such attachment")
    services.guardrail_policy_detach(attachment=attachment, actor=Actor.user(request.user))
    messages.success(request, "Detached.")
    return _to_detail(request, policy)


@console_view(*READERS)
@require_POST
def policy_dry_run(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = DryRunForm(request.POST)
    results = []
    if form.is_valid():
        policies = list(selectors.policies_of_tenant(tenant_id=ctx.tenant.pk))
        results = dry_run(policies=policies, prompt=form.cleaned_data["prompt"])
    template = "guardrails/list.html#dry-run" if request.htmx else "guardrails/list.html"  # type: ignore[attr-defined]
    return render(
        request,
        template,
        {
            "policies": selectors.policies_of_tenant(tenant_id=ctx.tenant.pk),
            "can_write": ctx.has_role(ADMIN),
            "kinds": KIND_CHOICES,
            "dry_form": form,
            "dry_results": results,
            "dry_ran": form.is_valid(),
        },
        status=200 if form.is_valid() else 400,
    )


@console_view(*REVIEWERS)
@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    status = request.GET.get("status", "held")
    if status not in ("held", "released", "dismissed", "all"):
        status = "held"
    held = selectors.quarantine_queue(
        tenant_id=ctx.tenant.pk, status="" if status == "all" else status
    )
    return render(
        request,
        "guardrails/review.html",
        {"held": held, "status": status, "form": ReviewForm()},
    )


@console_view(*REVIEWERS)
@require_POST
def review_decide(request: HttpRequest, request_id: str) -> HttpResponse:
    ctx = console_context(request)
    held = selectors.held_request(tenant_id=ctx.tenant.pk, request_id=request_id)
    if held is None:
        raise Http404("no such held request")
    form = ReviewForm(request.POST)
    if form.is_valid():
        services.quarantine_review(
            tenant=ctx.tenant,
            request_id=request_id,
            digest=str(held.finding.get("digest", "")),
            status=form.cleaned_data["status"],
            label=form.cleaned_data["label"],
            actor=Actor.user(request.user),
        )
        messages.success(request, f"Request {request_id} reviewed.")
    else:
        for problem in form.non_field_errors():
            messages.error(request, str(problem))
    back = request.POST.get("back", "held")
    back = back if back in ("held", "released", "dismissed", "all") else "held"
    url = reverse("guardrails:review", kwargs={"tenant_slug": ctx.tenant.slug})
    return redirect(f"{url}?status={back}")


@console_view(*REVIEWERS)
@require_GET
def review_export(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    out = io.StringIO()
    write_jsonl(training_rows(selectors.labelled_reviews(tenant_id=tenant.pk)), out)
    response = HttpResponse(out.getvalue(), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="review-labels-{tenant.slug}.jsonl"'
    return response

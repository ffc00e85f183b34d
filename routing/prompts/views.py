"""Console pages for prompts: versions with outcomes and diffs, label moves and rollback.

Tenant admins and developers may publish and move labels; compliance may read. A published
version has no edit page: the version page answers GET only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from routing.prompts import selectors, services
from routing.prompts.forms import (
    DiffForm,
    LabelMoveForm,
    PinForm,
    PromptCreateForm,
    PublishForm,
    RequestsFilterForm,
)
from routing.prompts.models import Prompt
from tenants import selectors as tenant_selectors
from tenants.models import Role

READERS = (Role.TENANT_ADMIN, Role.DEVELOPER, Role.COMPLIANCE)
WRITERS = (Role.TENANT_ADMIN, Role.DEVELOPER)


def _prompt(request: HttpRequest, name: str) -> Prompt:
    prompt = selectors.prompt_get(tenant_id=console_context(request).tenant.pk, name=name)
    if prompt is None:
        raise Http404("no such prompt")
    return prompt


def _audit_search(request: HttpRequest, prompt: Prompt, number: int) -> str:
    """The compliance audit search filtered to one version ("" for roles that cannot open it)."""
    ctx = console_context(request)
    if not ctx.has_role(Role.COMPLIANCE):
        return ""
    url = reverse("compliance:search", kwargs={"tenant_slug": ctx.tenant.slug})
    query: dict[str, str | int] = {"prompt_name": prompt.name, "prompt_version": number}
    return f"{url}?{urlencode(query)}"


def _to_detail(request: HttpRequest, prompt: Prompt) -> HttpResponse:
    slug = console_context(request).tenant.slug
    return redirect("prompts:detail", tenant_slug=slug, name=prompt.name)


@console_view(*READERS)
@require_GET
def prompt_list(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    prompts = selectors.prompt_list(tenant_id=ctx.tenant.pk)
    return render(
        request,
        "prompts/list.html",
        {"prompts": prompts, "can_write": ctx.has_role(*WRITERS)},
    )


@console_view(*WRITERS)
def prompt_create(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = PromptCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        actor = Actor.user(request.user)
        data = form.cleaned_data
        try:
            prompt = services.prompt_create(
                actor=actor, tenant=ctx.tenant, name=data["name"], description=data["description"]
            )
            version, _ = services.prompt_publish(
                actor=actor,
                prompt=prompt,
                messages=form.messages(),
                parameters=data["parameters"],
                model=data["model"],
                note=data["note"],
            )
        except services.PromptError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Published {prompt.name} v{version.number}.")
            return _to_detail(request, prompt)
    status = 400 if request.method == "POST" else 200
    return render(request, "prompts/publish.html", {"form": form, "prompt": None}, status=status)


@console_view(*READERS)
@require_GET
def prompt_detail(request: HttpRequest, name: str) -> HttpResponse:
    ctx = console_context(request)
    prompt = _prompt(request, name)
    versions = selectors.prompt_versions(prompt=prompt)
    usage = selectors.version_usage(tenant_id=ctx.tenant.pk, prompt_name=prompt.name)
    rows = [
        (version, usage.get(version.number), _audit_search(request, prompt, version.number))
        for version in versions
    ]
    labels = selectors.prompt_labels(prompt=prompt)
    history = list(selectors.label_history(prompt=prompt))
    # What "roll back" would restore, per label: where it pointed before its last move.
    previous: dict[str, int | None] = {}
    for move in history:  # newest first
        previous.setdefault(move.label.name, move.from_version)
    numbers = [v.number for v in versions]
    pins = selectors.prompt_pins(prompt=prompt)
    return render(
        request,
        "prompts/detail.html",
        {
            "prompt": prompt,
            "rows": rows,
            "labels": [(label, previous.get(label.name)) for label in labels],
            "history": history,
            "move_form": LabelMoveForm(numbers=numbers),
            "diff_form": DiffForm(initial=_latest_pair(numbers)),
            "numbers": numbers,
            "pins": pins,
            "mine": _pins_of(request, pins),
            # A developer is not shown other teams' keys, here or anywhere in the console.
            "sees_all_keys": ctx.has_role(Role.TENANT_ADMIN, Role.COMPLIANCE),
            "pin_form": _pin_form(request, None, numbers),
            "can_write": ctx.has_role(*WRITERS),
        },
    )


def _holders(request: HttpRequest) -> tuple[Any, Any]:
    """The teams and keys this user may pin: a tenant admin's are the tenant's; a developer's,
    the teams they are in and the keys they own (as everywhere else in the console)."""
    ctx = console_context(request)
    if ctx.has_role(Role.TENANT_ADMIN):
        teams = tenant_selectors.teams_of_tenant(tenant=ctx.tenant)
        keys = tenant_selectors.keys_of_tenant(tenant=ctx.tenant)
    else:
        teams = tenant_selectors.teams_of_member(tenant=ctx.tenant, user=request.user)
        keys = tenant_selectors.keys_of_owner(tenant=ctx.tenant, user=request.user)
    return teams, keys.filter(revoked_at__isnull=True)


def _pins_of(request: HttpRequest, pins: list[Any]) -> set[int]:
    """The pins among `pins` whose team or key this user may pin (two queries, not one a pin)."""
    teams, keys = _holders(request)
    team_ids = set(teams.values_list("pk", flat=True))
    key_ids = set(keys.values_list("pk", flat=True))
    return {
        pin.pk
        for pin in pins
        if (pin.team_id in team_ids if pin.team_id is not None else pin.api_key_id in key_ids)
    }


def _pin_form(request: HttpRequest, data: Any, numbers: list[int]) -> PinForm:
    teams, keys = _holders(request)
    return PinForm(data, numbers=numbers, teams=teams, keys=keys)


def _latest_pair(numbers: list[int]) -> dict[str, int]:
    """The latest version and the one before it (numbers are newest first)."""
    if not numbers:
        return {}
    return {"old": numbers[1] if len(numbers) > 1 else numbers[0], "new": numbers[0]}


@console_view(*WRITERS)
def prompt_publish(request: HttpRequest, name: str) -> HttpResponse:
    prompt = _prompt(request, name)
    latest = prompt.versions.order_by("-number").first()
    form = PublishForm(request.POST or None, initial=PublishForm.initial_from(latest))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version, created = services.prompt_publish(
                actor=Actor.user(request.user),
                prompt=prompt,
                messages=form.messages(),
                parameters=data["parameters"],
                model=data["model"],
                note=data["note"],
            )
        except services.PromptError as exc:
            form.add_error(None, str(exc))
        else:
            if created:
                messages.success(request, f"Published {prompt.name} v{version.number}.")
            else:
                messages.info(request, f"Identical to v{version.number}: nothing new published.")
            return _to_detail(request, prompt)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "prompts/publish.html",
        {"form": form, "prompt": prompt, "latest": latest},
        status=status,
    )


@console_view(*WRITERS)
@require_POST
def label_move(request: HttpRequest, name: str) -> HttpResponse:
    prompt = _prompt(request, name)
    numbers = list(prompt.versions.values_list("number", flat=True))
    form = LabelMoveForm(request.POST, numbers=numbers)
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(map(str, e))}" for field, e in form.errors.items())
        messages.error(request, f"The label was not moved ({errors}).")
        return _to_detail(request, prompt)
    data = form.cleaned_data
    try:
        label = services.prompt_label_move(
            actor=Actor.user(request.user),
            prompt=prompt,
            label=data["label"],
            version=data["version"],
            canary_version=data["canary_version"],
            canary_percent=data["canary_percent"] or 0,
            note=data["note"],
        )
    except services.PromptError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{label} now points at v{label.version.number}.")
    return _to_detail(request, prompt)


@console_view(*WRITERS)
@require_POST
def label_rollback(request: HttpRequest, name: str, label: str) -> HttpResponse:
    prompt = _prompt(request, name)
    current = prompt.labels.filter(name=label).first()
    if current is None:
        raise Http404("no such label")
    try:
        moved = services.prompt_label_rollback(actor=Actor.user(request.user), label=current)
    except services.PromptError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Rolled back: {moved} points at v{moved.version.number} again.")
    return _to_detail(request, prompt)


@console_view(*WRITERS)
@require_POST
def pin_set(request: HttpRequest, name: str) -> HttpResponse:
    prompt = _prompt(request, name)
    numbers = list(prompt.versions.values_list("number", flat=True))
    form = _pin_form(request, request.POST, numbers)
    if not form.is_valid():
        messages.error(request, "Pick a team or key and a version.")
        return _to_detail(request, prompt)
    try:
        pin = services.prompt_pin_set(
            actor=Actor.user(request.user),
            prompt=prompt,
            version=form.cleaned_data["version"],
            **form.chosen_holder(),
        )
    except services.PromptError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{pin.team or pin.api_key} is pinned to v{pin.version.number}.")
    return _to_detail(request, prompt)


@console_view(*WRITERS)
@require_POST
def pin_clear(request: HttpRequest, name: str, pin_id: int) -> HttpResponse:
    prompt = _prompt(request, name)
    pin = selectors.prompt_pin(prompt=prompt, pin_id=pin_id)
    if pin is None or pin.pk not in _pins_of(request, [pin]):
        raise Http404("no such pin")
    holder = pin.team or pin.api_key
    services.prompt_pin_clear(actor=Actor.user(request.user), pin=pin)
    messages.success(request, f"{holder} follows the labels again.")
    return _to_detail(request, prompt)


@console_view(*READERS)
@require_GET
def version_detail(request: HttpRequest, name: str, number: int) -> HttpResponse:
    ctx = console_context(request)
    prompt = _prompt(request, name)
    version = selectors.prompt_version(prompt=prompt, number=number)
    if version is None:
        raise Http404("no such version")
    form = RequestsFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and not form.refused else {}
    failed_only = bool(data.get("failed"))
    records = selectors.version_requests(
        tenant_id=ctx.tenant.pk, prompt_name=prompt.name, version=number, failed_only=failed_only
    )
    if form.refused:  # e.g. page=abc beside failed=on: no rows rather than every request
        records = records.none()
    page = Paginator(records, 50).get_page(data.get("page") or 1)
    usage = selectors.version_usage(tenant_id=ctx.tenant.pk, prompt_name=prompt.name).get(number)
    return render(
        request,
        "prompts/version.html",
        {
            "prompt": prompt,
            "version": version,
            "usage": usage,
            "audit_search": _audit_search(request, prompt, number),
            "page": page,
            "failed_only": failed_only,
            "form": form,
        },
        status=400 if form.refused else 200,
    )


@console_view(*READERS)
@require_GET
def version_diff(request: HttpRequest, name: str) -> HttpResponse:
    prompt = _prompt(request, name)
    form = DiffForm(request.GET)
    lines = []
    old = new = None
    if form.is_valid():
        old = selectors.prompt_version(prompt=prompt, number=form.cleaned_data["old"])
        new = selectors.prompt_version(prompt=prompt, number=form.cleaned_data["new"])
        if old is None or new is None:
            form.add_error(None, "Pick two versions of this prompt.")
        else:
            lines = selectors.version_diff(old=old, new=new)
    numbers = sorted(prompt.versions.values_list("number", flat=True))
    status = 200 if form.is_valid() else 400
    return render(
        request,
        "prompts/diff.html",
        {
            "prompt": prompt,
            "form": form,
            "lines": lines,
            "old": old,
            "new": new,
            "numbers": numbers,
        },
        status=status,
    )

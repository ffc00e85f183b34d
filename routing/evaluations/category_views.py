"""Task categories in the console (platform admins): list, create, edit, via `category_upsert`.

Categories are shared by every tenant. The "new" form never replaces one (409); an edit never
creates one (404).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audit.activity.services import Actor
from gateway_site.console.access import console_context, console_view
from routing.evaluations import selectors
from routing.evaluations.models import CATEGORY_NAME
from routing.evaluations.services import CategoryPrecondition, category_upsert
from tenants.models import Role


class TaskCategoryForm(forms.Form):
    name = forms.RegexField(regex=CATEGORY_NAME, max_length=64, help_text="e.g. code, summarise")
    description = forms.CharField(max_length=300, required=False)
    threshold = forms.FloatField(
        min_value=0,
        max_value=1,
        help_text="The lowest evaluation score (0 to 1) a deployment needs to serve it first.",
    )
    strict = forms.BooleanField(
        required=False, help_text="Never fall back below the threshold: the request fails instead."
    )
    pattern = forms.CharField(
        max_length=500,
        required=False,
        help_text="A case-insensitive regular expression on the last user message; empty: none.",
    )
    priority = forms.IntegerField(min_value=0, max_value=32767, initial=100)


def _save(request: HttpRequest, form: TaskCategoryForm, *, creating: bool) -> bool | None:
    expect = "new" if creating else "existing"
    try:
        category_upsert(actor=Actor.user(request.user), expect=expect, **form.cleaned_data)
    except CategoryPrecondition:
        return False
    except ValidationError as refused:
        for field, errors in refused.message_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
        return None
    return True


def _page(request: HttpRequest, form: TaskCategoryForm, category: Any, status: int) -> HttpResponse:
    return render(
        request,
        "evaluations/categories.html",
        {"form": form, "category": category, "categories": selectors.categories_all()},
        status=status,
    )


@console_view(Role.PLATFORM_ADMIN)
def categories(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = TaskCategoryForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            saved = _save(request, form, creating=True)
            if saved:
                messages.success(request, f"Task category {form.cleaned_data['name']} created.")
                return redirect("evaluations:categories", tenant_slug=ctx.tenant.slug)
            if saved is False:
                status = 409
                name = form.cleaned_data["name"]
                form.add_error("name", f"Task category '{name}' already exists: edit it instead.")
    return _page(request, form, None, status)


@console_view(Role.PLATFORM_ADMIN)
def category_edit(request: HttpRequest, name: str) -> HttpResponse:
    ctx = console_context(request)
    category = selectors.category_get(name=name)
    if category is None:
        raise Http404("no such task category")
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None:
        data["name"] = category.name
    initial = {
        f: getattr(category, f)
        for f in ("name", "description", "threshold", "strict", "pattern", "priority")
    }
    form = TaskCategoryForm(data, initial=initial)
    form.fields["name"].disabled = True
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            saved = _save(request, form, creating=False)
            if saved:
                messages.success(request, f"Task category {name} saved.")
                return redirect("evaluations:categories", tenant_slug=ctx.tenant.slug)
            if saved is False:
                status = 412
                form.add_error(None, f"Task category '{name}' no longer exists: nothing saved.")
    return _page(request, form, category, status)

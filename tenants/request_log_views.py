"""Developers' own requests: a log of their keys' records and one record's page.

A developer (or a tenant admin, for the keys it owns) sees only the records of keys it owns;
another's request id is not found. Bodies are shown as the tenant's audit policy stored them
(full, masked, or metadata only: the gateway applies the privacy mode when it writes the record),
and each record view is logged like a compliance officer's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit import presenters
from audit import selectors as audit_selectors
from audit.forms import parse_cursor
from audit.models import ContentMode
from audit.services import audit_access_record
from gateway_site.console.access import console_context, console_view
from gateway_site.console.filters import FilterForm, refused_response
from tenants import selectors
from tenants.models import Role

DEV = (Role.DEVELOPER, Role.TENANT_ADMIN)
WINDOWS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class RequestLogForm(FilterForm):
    window = forms.ChoiceField(
        choices=[("1d", "Last day"), ("7d", "Last 7 days"), ("30d", "Last 30 days")],
        required=False,
        label="Period",
    )
    key = forms.IntegerField(required=False, min_value=1, label="Key")
    before = forms.RegexField(regex=r"^[0-9T:.+\- ]{10,40}\|[0-9]{1,19}$", required=False)

    def cursor(self) -> tuple[datetime, int] | None:
        return parse_cursor(self.cleaned_data.get("before") or "")


@console_view(*DEV)
def my_requests(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = RequestLogForm(request.GET or None)
    if form.refused:
        return refused_response(request, form, what="shown")
    data = form.cleaned_data if form.is_bound else {}
    keys = list(selectors.keys_of_owner(tenant=ctx.tenant, user=request.user).order_by("name"))
    key_ids = [k.pk for k in keys]
    if data.get("key"):
        if data["key"] not in key_ids:
            raise Http404("no such key of yours")
        key_ids = [data["key"]]
    window = data.get("window") or "7d"
    rows, cursor = audit_selectors.own_requests_page(
        tenant=ctx.tenant,
        key_ids=key_ids,
        since=timezone.now() - WINDOWS[window],
        before=form.cursor() if form.is_bound else None,
    )
    return render(
        request,
        "console/my_requests.html",
        {
            "rows": [presenters.row(r) for r in rows],
            "keys": keys,
            "key_id": data.get("key"),
            "window": window,
            "next_query": presenters.next_page_query(request.GET, cursor),
        },
    )


@console_view(*DEV)
def my_request(request: HttpRequest, request_id: str) -> HttpResponse:
    ctx = console_context(request)
    found = audit_selectors.own_request_get(
        tenant=ctx.tenant,
        key_ids=selectors.key_ids_of_owner(tenant=ctx.tenant, user=request.user),
        request_id=request_id[:64],
    )
    if found is None:
        raise Http404("no such request among yours")
    audit_access_record(
        user=request.user,
        action="audit.view_own",
        tenant_id=ctx.tenant.pk,
        query={"request_id": found.request_id},
        record_count=1,
    )
    shown = presenters.readable_record(found)
    mode = audit_selectors.content_mode_of(tenant=ctx.tenant)
    return render(
        request,
        "console/my_request.html",
        {
            "record": shown,
            "view": presenters.record_view(shown),
            "mode": ContentMode(mode),
        },
    )

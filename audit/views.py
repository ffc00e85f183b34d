"""The compliance console: search, record, export and chain verification (role `compliance`).

Views are thin: forms validate, selectors read (always within the console's tenant), services
record who looked at what. Platform admins pass the role check everywhere (gateway_site.console.access).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit import presenters, selectors
from audit.export import (
    FORMATS,
    OUT_OF_RANGE,
    ExportRun,
    audit_export_get,
    audit_exports_recent,
    stream_async,
)
from audit.forms import AuditSearchForm, ChainVerifyForm
from audit.models import CheckpointKind
from audit.sealer import audit_seal_pending
from audit.selectors import audit_record_chain_status, audit_record_get, audit_records_page
from audit.services import audit_access_record
from audit.verify import audit_chain_verify
from gateway_site.console.access import console_context, console_view
from gateway_site.console.filters import refused_response
from tenants.models import Role

COMPLIANCE = Role.COMPLIANCE


@console_view(COMPLIANCE)
def search(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    form = AuditSearchForm(request.GET or None, tenant=tenant)
    rows: list[Any] = []
    next_cursor = None
    if not form.refused:  # invalid filters: their errors and no rows, never all rows
        filters = form.filters()
        rows, next_cursor = audit_records_page(
            tenant_id=tenant.pk, filters=filters, before=form.cursor()
        )
        audit_access_record(
            user=request.user,
            action="audit.search",
            tenant_id=tenant.pk,
            query=filters.as_json(),
            record_count=len(rows),
        )
    template = "audit/search.html"
    if request.htmx:  # type: ignore[attr-defined]
        template += "#results"  # search as you type swaps only the results
    return render(
        request,
        template,
        {
            "form": form,
            "rows": [presenters.row(record) for record in rows],
            "next_query": presenters.next_page_query(request.GET, next_cursor),
            "filter_query": presenters.filter_query(request.GET),
            "exports": audit_exports_recent(tenant_id=tenant.pk, limit=5),
        },
        status=400 if form.refused else 200,
    )


@console_view(COMPLIANCE)
def record(request: HttpRequest, request_id: str) -> HttpResponse:
    tenant = console_context(request).tenant
    found = audit_record_get(tenant_id=tenant.pk, request_id=request_id)
    if found is None:
        raise Http404("no such record in this tenant")
    # Without a beat scheduler (a development install) this is what chains new records.
    audit_seal_pending(limit=20_000)
    audit_access_record(
        user=request.user,
        action="audit.view",
        tenant_id=tenant.pk,
        query={"request_id": request_id},
        record_count=1,
    )
    shown = presenters.readable_record(found)  # columns stored escaped, read back
    return render(
        request,
        "audit/record.html",
        {
            "record": shown,
            "view": presenters.record_view(shown),
            "chain": audit_record_chain_status(record=found),
        },
    )


@console_view(COMPLIANCE)
@require_GET  # a read: it seals the records pending before its first page, which a POST must not
def export(request: HttpRequest, fmt: str) -> HttpResponse | StreamingHttpResponse:
    if fmt not in FORMATS:
        raise Http404("unknown export format")
    tenant = console_context(request).tenant
    form = AuditSearchForm(request.GET or None, tenant=tenant)
    if form.refused:
        return refused_response(request, form, what="exported")
    filters = form.filters()
    run = ExportRun(tenant=tenant, filters=filters, format=fmt, user=request.user)
    try:
        body = run.start()
    except DataError:
        form.add_error(None, OUT_OF_RANGE)
        return refused_response(request, form, what="exported")
    audit_access_record(
        user=request.user,
        action="audit.export",
        tenant_id=tenant.pk,
        query={**filters.as_json(), "format": fmt, "export_id": str(run.id)},
    )
    response = StreamingHttpResponse(stream_async(body), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{run.filename}"'
    response["X-Audit-Export-Id"] = str(run.id)
    return response


@console_view(COMPLIANCE)
def export_manifest(request: HttpRequest, export_id: uuid.UUID) -> HttpResponse:
    tenant = console_context(request).tenant
    found = audit_export_get(tenant_id=tenant.pk, export_id=export_id)
    if found is None:
        raise Http404("no such export in this tenant")
    body: dict[str, Any] = {"manifest": found.manifest, "signature": found.signature}
    response = JsonResponse(body, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = (
        f'attachment; filename="{found.manifest["file_name"]}.manifest.json"'
    )
    return response


@console_view(COMPLIANCE)
def chain(request: HttpRequest) -> HttpResponse:
    tenant = console_context(request).tenant
    form = ChainVerifyForm(request.GET or None)
    report = None
    if request.GET.get("verify") and form.is_valid():
        audit_seal_pending(limit=20_000)
        report = audit_chain_verify(
            tenant_id=tenant.pk,
            since=form.cleaned_data.get("since"),
            until=form.cleaned_data.get("until"),
        )
        audit_access_record(
            user=request.user,
            action="audit.verify",
            tenant_id=tenant.pk,
            query={k: str(v) for k, v in form.cleaned_data.items() if v},
            record_count=report.checked,
        )
    checkpoints = selectors.recent_checkpoints(tenant=tenant)
    return render(
        request,
        "audit/chain.html",
        {
            "form": form,
            "report": report,
            "checkpoints": checkpoints,
            "head_kind": CheckpointKind.HEAD,
        },
        # Asked to verify with dates that do not parse: the errors, and no "verified" by omission.
        status=400 if request.GET.get("verify") and not form.is_valid() else 200,
    )

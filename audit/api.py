"""The compliance search and export in the management API (`/api/v1/tenants/{slug}/audit/…`).

The same filters as the console's search (audit/forms.py), validated by the same form: a filter
that does not validate answers 422 naming it, and nothing is searched or exported (a dropped
filter would widen the query). Open to compliance keys (and platform keys), as the console's
pages are to the compliance role; every search, view and export is recorded as the console's are.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.db import DataError
from django.http import HttpRequest, JsonResponse, QueryDict, StreamingHttpResponse
from ninja import Field, Query, Router, Schema

from audit import presenters
from audit.export import (
    FORMATS,
    OUT_OF_RANGE,
    ExportRun,
    answer_text,
    audit_export_get,
    last_user_text,
    stream_async,
)
from audit.forms import AuditSearchForm
from audit.models import AuditRecord
from audit.selectors import AuditFilters, audit_record_get, audit_records_page
from audit.services import audit_access_record
from gateway_site.api.auth import api_roles
from gateway_site.api.common import scope_of, tenant_or_404
from gateway_site.api.errors import ApiError, not_found
from tenants.models import Tenant
from tenants.selectors import team_named

router = Router(tags=["audit"])

COMPLIANCE = "compliance"


@dataclass(frozen=True, slots=True)
class ApiReader:
    """The admin key as the one who looked: what the access log and manifests name."""

    label: str
    pk: None = None

    def get_username(self) -> str:
        return self.label


class AuditQuery(Schema):
    """Every filter is read as text and validated by the console's form (audit/forms.py)."""

    q: str | None = Field(default=None, description="Words of the prompt or response")
    end_user: str | None = None
    since: str | None = Field(default=None, description="ISO 8601, UTC if no offset")
    until: str | None = None
    team: str | None = Field(default=None, description="Team slug (or id)")
    key: str | None = Field(default=None, description="Virtual key id")
    model: str | None = None
    provider: str | None = None
    status: str | None = Field(default=None, description="success, error, rejected, …")
    finding: str | None = Field(default=None, description="A guardrail finding, e.g. pii")
    prompt_name: str | None = None
    prompt_version: str | None = None
    min_cost: str | None = Field(default=None, description="USD")
    max_cost: str | None = None


class PageQuery(AuditQuery):
    before: str | None = Field(
        default=None, description="The `next_cursor` of the previous page; omit for the newest"
    )
    limit: int = Field(default=50, ge=1, le=200)


class ExportQuery(AuditQuery):
    format: Literal["csv", "jsonl"] = "jsonl"


class RecordOut(Schema):
    request_id: str
    started_at: datetime
    completed_at: datetime | None
    team: str
    api_key: str
    end_user: str
    feature: str
    endpoint: str
    model_requested: str
    route_alias: str
    deployment_name: str
    provider_name: str
    upstream_model: str
    prompt_name: str
    prompt_version: int | None
    status: str
    http_status: int | None
    error_type: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: str
    latency_ms: float | None
    guardrail_findings: Any
    prompt: str = Field(description="The last user message, as stored (masked if it was)")
    response: str


class RecordDetailOut(RecordOut):
    request_body: Any
    response_body: Any
    tool_calls: Any
    attempts: Any
    chain_seq: int | None
    chain_hash: str | None


class PageOut(Schema):
    records: list[RecordOut]
    next_cursor: str | None = Field(description="Pass as `before` for the next page; null: done")
    filters: dict[str, str] = Field(description="The filters applied, as the export states them")


def _form(tenant: Tenant, query: AuditQuery, *, cursor: str | None = None) -> AuditSearchForm:
    data = QueryDict(mutable=True)
    for name, value in query.model_dump(exclude={"limit", "format", "before"}).items():
        if value is None:
            continue
        if name == "team":  # the API names teams by slug; the form takes the id
            team = team_named(tenant=tenant, slug=value)
            value = str(team.pk) if team is not None else value
        data[name] = value
    if cursor:
        data["before"] = cursor
    return AuditSearchForm(data, tenant=tenant)


def _refused(form: AuditSearchForm, *, what: str) -> ApiError:
    fields = [
        {"field": name if name != "__all__" else "query", "message": str(error)}
        for name, errors in form.errors.items()
        for error in errors
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(
        422,
        "invalid_filter",
        f"These filters are not valid, so nothing was {what}: {summary}",
        fields,
    )


def _filters(request: HttpRequest, slug: str, query: AuditQuery, cursor: str | None = None) -> Any:
    tenant = tenant_or_404(request, slug)
    form = _form(tenant, query, cursor=cursor)
    if form.refused:
        raise _refused(form, what="searched" if isinstance(query, PageQuery) else "exported")
    return tenant, form


def _record_out(record: AuditRecord) -> dict[str, Any]:
    shown = presenters.readable_record(record)
    return {
        **{name: getattr(shown, name) for name in RecordOut.model_fields if hasattr(shown, name)},
        "team": shown.team.slug,
        "api_key": f"{shown.api_key.name} ({shown.api_key.prefix}…)",
        "cost_usd": f"{shown.cost_usd or Decimal(0):f}",
        "prompt": last_user_text(shown.request_body),
        "response": answer_text(shown.response_body),
    }


def _cursor(position: tuple[datetime, int] | None) -> str | None:
    return None if position is None else f"{position[0].isoformat()}|{position[1]}"


@router.get(
    "/tenants/{slug}/audit/records",
    response=PageOut,
    summary="Search the audit trail (compliance), newest first, by cursor",
)
@api_roles(COMPLIANCE)
def audit_search(request: HttpRequest, slug: str, query: Query[PageQuery]) -> dict[str, Any]:
    tenant, form = _filters(request, slug, query, cursor=query.before)
    filters: AuditFilters = form.filters()
    rows, position = audit_records_page(
        tenant_id=tenant.pk, filters=filters, before=form.cursor(), size=query.limit
    )
    audit_access_record(
        user=ApiReader(scope_of(request).label),
        action="audit.search",
        tenant_id=tenant.pk,
        query=filters.as_json(),
        record_count=len(rows),
    )
    return {
        "records": [_record_out(record) for record in rows],
        "next_cursor": _cursor(position),
        "filters": filters.as_json(),
    }


@router.get(
    "/tenants/{slug}/audit/records/{request_id}",
    response=RecordDetailOut,
    summary="One audit record, bodies included (compliance)",
)
@api_roles(COMPLIANCE)
def audit_record(request: HttpRequest, slug: str, request_id: str) -> dict[str, Any]:
    tenant = tenant_or_404(request, slug)
    found = audit_record_get(tenant_id=tenant.pk, request_id=request_id[:64])
    if found is None:
        raise not_found(f"Audit record '{request_id[:64]}'")
    audit_access_record(
        user=ApiReader(scope_of(request).label),
        action="audit.view",
        tenant_id=tenant.pk,
        query={"request_id": request_id},
        record_count=1,
    )
    shown = presenters.readable_record(found)
    return {
        **_record_out(found),
        "request_body": shown.request_body,
        "response_body": shown.response_body,
        "tool_calls": shown.tool_calls,
        "attempts": shown.attempts,
        "chain_seq": getattr(found, "chain_seq", None),
        "chain_hash": getattr(found, "chain_hash", None),
    }


@router.get(
    "/tenants/{slug}/audit/export",
    response={200: None},
    summary="Export a search as CSV or JSON Lines (compliance); its manifest is signed",
)
@api_roles(COMPLIANCE)
def audit_export(
    request: HttpRequest, slug: str, query: Query[ExportQuery]
) -> StreamingHttpResponse:
    tenant, form = _filters(request, slug, query)
    filters = form.filters()
    reader = ApiReader(scope_of(request).label)
    run = ExportRun(tenant=tenant, filters=filters, format=query.format, user=reader)
    try:
        body = run.start()
    except DataError:
        form.add_error(None, OUT_OF_RANGE)
        raise _refused(form, what="exported") from None
    audit_access_record(
        user=reader,
        action="audit.export",
        tenant_id=tenant.pk,
        query={**filters.as_json(), "format": query.format, "export_id": str(run.id)},
    )
    response = StreamingHttpResponse(stream_async(body), content_type=FORMATS[query.format])
    response["Content-Disposition"] = f'attachment; filename="{run.filename}"'
    response["X-Audit-Export-Id"] = str(run.id)
    return response


@router.get(
    "/tenants/{slug}/audit/exports/{export_id}/manifest",
    response={200: None},
    summary="The signed manifest of a finished export (compliance)",
)
@api_roles(COMPLIANCE)
def audit_export_manifest(request: HttpRequest, slug: str, export_id: uuid.UUID) -> JsonResponse:
    tenant = tenant_or_404(request, slug)
    found = audit_export_get(tenant_id=tenant.pk, export_id=export_id)
    if found is None:
        raise not_found(f"Export {export_id}")
    return JsonResponse({"manifest": found.manifest, "signature": found.signature})

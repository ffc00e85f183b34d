"""The finance cost report in the management API (`/api/v1/tenants/{slug}/costs`).

The same numbers as the finance pages (billing/views.py): the same rollups through the same
selector, the same period filters validated by the same form, and each row's cost rounded as the page
shows it, so that the rows add up to the total (billing/money.py). Open to finance and tenant-admin
keys, as the pages are to those roles.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, QueryDict
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from billing import selectors
from billing.forms import FinanceFilterForm
from billing.money import allocate, money
from gateway_site.api.auth import api_roles
from gateway_site.api.common import tenant_or_404
from gateway_site.api.errors import ApiError

router = Router(tags=["finance"])


class CostQuery(Schema):
    period: str | None = Field(
        default=None, description="this_month (default), last_month, last_30_days or custom"
    )
    start: str | None = Field(default=None, description="YYYY-MM-DD, UTC (with end)")
    end: str | None = Field(default=None, description="YYYY-MM-DD, UTC, inclusive")
    by: str | None = Field(
        default=None, description="team (default), feature, user, model or route"
    )


class CostRowOut(Schema):
    key: str = Field(description="The team's id, the feature, end user, deployment or route alias")
    label: str
    cost_usd: str = Field(description="As the finance page shows it; the rows add up to total_usd")
    cost_usd_exact: str
    requests: int
    errors: int
    tokens: int


class CostReportOut(Schema):
    by: str
    start: date
    end: date = Field(description="Inclusive")
    total_usd: str
    total_usd_exact: str
    rows: list[CostRowOut]


def _refused(form: FinanceFilterForm) -> ApiError:
    fields = [
        {"field": name if name != "__all__" else "query", "message": str(error)}
        for name, errors in form.errors.items()
        for error in errors
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(422, "invalid_filter", f"These filters are not valid: {summary}", fields)


@router.get(
    "/tenants/{slug}/costs",
    response=CostReportOut,
    summary="Cost by team, feature, end user, model or route for a period (finance)",
)
@api_roles("finance", "tenant_admin")
def cost_report(request: HttpRequest, slug: str, query: Query[CostQuery]) -> dict[str, Any]:
    tenant = tenant_or_404(request, slug)
    data = QueryDict(mutable=True)
    for name, value in query.model_dump().items():
        if value is not None:
            data[name] = value
    form = FinanceFilterForm(data)
    if form.refused:
        raise _refused(form)
    start, end = form.window(timezone.now().date())
    by = form.dimension()
    rows = selectors.cost_breakdown(tenant=tenant, start=start, end=end, dimension=by)
    exact = [row.cost_usd for row in rows]
    shown = allocate(exact)
    total = sum(exact, Decimal(0))
    return {
        "by": by,
        "start": start,
        "end": end - timedelta(days=1),
        "total_usd": f"{money(total):f}",
        "total_usd_exact": f"{total:f}",
        "rows": [
            {
                "key": row.key,
                "label": row.label,
                "cost_usd": f"{cost:f}",
                "cost_usd_exact": f"{row.cost_usd:f}",
                "requests": row.requests,
                "errors": row.errors,
                "tokens": row.tokens,
            }
            for row, cost in zip(rows, shown, strict=True)
        ],
    }

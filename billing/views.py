"""Finance console: cost by team, feature, user, model and route; drill-down team → user → requests.

Every page exports the same rows as CSV with `?format=csv`. Thin: the numbers come from
billing/selectors.py, the chart from billing/charts.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from billing import selectors
from billing.budgets import budget_burndown
from billing.charts import line_chart
from billing.forms import PRESETS, FinanceFilterForm, UserRequestsFilterForm, preset_range
from billing.money import allocate, money
from gateway_site.console.access import console_context, console_view
from gateway_site.console.filters import refused_response
from gateway_site.csv_safe import CsvWriter
from routing.cache.selectors import cache_savings
from tenants.models import Role

FINANCE = (Role.FINANCE, Role.TENANT_ADMIN)


def _sums(rows: Sequence[selectors.CostRow]) -> dict[str, int]:
    """The table's other columns added up, for its total row."""
    return {
        "requests": sum(r.requests for r in rows),
        "errors": sum(r.errors for r in rows),
        "tokens": sum(r.tokens for r in rows),
    }


def _csv(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = CsvWriter(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


def _shown(rows: Sequence[selectors.CostRow]) -> tuple[list[Decimal], Decimal]:
    """Each row's cost as shown and the total as shown: the rows add up to the total, on the page
    and in the CSV alike (billing/money.py)."""
    exact = [row.cost_usd for row in rows]
    return allocate(exact), money(sum(exact, Decimal(0)))


def _filters(
    request: HttpRequest, form_class: type[FinanceFilterForm] = FinanceFilterForm
) -> tuple[FinanceFilterForm, date, date]:
    """The filters and the window they ask for. A refused form reads no rows (the callers check
    `form.refused`); its window is only the heading's this month."""
    form = form_class(request.GET or None)
    today = timezone.now().date()
    start, end = preset_range("this_month", today) if form.refused else form.window(today)
    return form, start, end


def _query(request: HttpRequest, **changes: str) -> str:
    params = {k: v for k, v in request.GET.items() if k != "format"} | changes
    return urlencode({k: v for k, v in params.items() if v})


def _period_links(request: HttpRequest) -> list[tuple[str, str, bool]]:
    current = request.GET.get("period") or "this_month"
    return [
        (label, "?" + _query(request, period=key, start="", end=""), key == current)
        for key, label in PRESETS.items()
        if key != "custom"
    ]


def _team_link(request: HttpRequest, team_id: str) -> str:
    slug = console_context(request).tenant.slug
    url = reverse("billing:team", kwargs={"tenant_slug": slug, "team_id": int(team_id)})
    return f"{url}?{_query(request, by='')}"


@console_view(*FINANCE)
def finance(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form, start, end = _filters(request)
    by = form.dimension()
    if form.refused and request.GET.get("format") == "csv":
        return refused_response(request, form, what="exported")
    rows = (
        []
        if form.refused
        else selectors.cost_breakdown(tenant=ctx.tenant, start=start, end=end, dimension=by)
    )
    last = end - timedelta(days=1)
    shown, total = _shown(rows)
    now = timezone.now()
    if request.GET.get("format") == "csv":
        return _csv(
            f"cost-by-{by}-{ctx.tenant.slug}-{start}-{last}",
            [by, "cost_usd", "requests", "errors", "tokens", "from", "to", "cost_usd_exact"],
            (
                [r.label, cost, r.requests, r.errors, r.tokens, start, last, r.cost_usd]
                for r, cost in zip(rows, shown, strict=True)
            ),
        )
    series = selectors.cost_series(
        tenant=ctx.tenant, start=start, end=end, dimension=by, breakdown=rows
    )
    return render(
        request,
        "billing/finance.html",
        {
            "form": form,
            "by": by,
            "entries": [
                (row, cost, _team_link(request, row.key) if by == "team" else "")
                for row, cost in zip(rows, shown, strict=True)
            ],
            "total": total,
            "sums": _sums(rows),
            "start": start,
            "last": last,
            "chart": line_chart(series.days, series.series),
            # One moment for both: the month's forecast and a budget's pace agree to the digit.
            "outlook": selectors.month_outlook(tenant=ctx.tenant, now=now),
            "budgets": budget_burndown(tenant=ctx.tenant, now=now),
            "cache": cache_savings(tenant=ctx.tenant, start=start, end=end),
            "periods": _period_links(request),
            "dimensions": [
                (d.title(), "?" + _query(request, by=d), d == by) for d in selectors.DIMENSIONS
            ],
            "csv_query": _query(request, format="csv"),
            "query": _query(request),
        },
        status=400 if form.refused else 200,
    )


def _team(request: HttpRequest, team_id: int) -> Any:
    team = selectors.team_of(tenant=console_context(request).tenant, team_id=team_id)
    if team is None:
        raise Http404("No such team in this tenant.")
    return team


@console_view(*FINANCE)
def team_costs(request: HttpRequest, team_id: int) -> HttpResponse:
    ctx = console_context(request)
    team = _team(request, team_id)
    form, start, end = _filters(request)
    if form.refused:
        return refused_response(request, form, what="shown")
    rows = selectors.cost_breakdown(
        tenant=ctx.tenant, start=start, end=end, dimension="user", team_id=team.id
    )
    last = end - timedelta(days=1)
    shown, total = _shown(rows)
    if request.GET.get("format") == "csv":
        return _csv(
            f"cost-by-user-{ctx.tenant.slug}-{team.slug}-{start}-{last}",
            ["team", "end_user", "cost_usd", "requests", "errors", "tokens", "from", "to"],
            (
                [team.name, r.key, cost, r.requests, r.errors, r.tokens, start, last]
                for r, cost in zip(rows, shown, strict=True)
            ),
        )
    series = selectors.cost_series(
        tenant=ctx.tenant, start=start, end=end, dimension="user", breakdown=rows, team_id=team.id
    )
    return render(
        request,
        "billing/team.html",
        {
            "team": team,
            "total": total,
            "sums": _sums(rows),
            "start": start,
            "last": last,
            "chart": line_chart(series.days, series.series),
            "outlook": selectors.month_outlook(
                tenant=ctx.tenant, now=timezone.now(), team_id=team.id
            ),
            "query": _query(request),
            "entries": [
                (row, cost, "?" + _query(request, user=row.key))
                for row, cost in zip(rows, shown, strict=True)
            ],
            "csv_query": _query(request, format="csv"),
        },
    )


@console_view(*FINANCE)
def user_requests(request: HttpRequest, team_id: int) -> HttpResponse:
    ctx = console_context(request)
    team = _team(request, team_id)
    form, start, end = _filters(request, UserRequestsFilterForm)
    if form.refused:
        return refused_response(request, form, what="shown")
    end_user = (form.cleaned_data.get("user") or "") if form.is_bound else ""
    records = list(
        selectors.user_requests(
            tenant=ctx.tenant, team_id=team.id, end_user=end_user, start=start, end=end
        )
    )
    shown = allocate([r.cost_usd for r in records])  # the rows add up to the total shown
    last = end - timedelta(days=1)
    if request.GET.get("format") == "csv":
        return _csv(
            f"requests-{ctx.tenant.slug}-{team.slug}-{start}-{last}",
            [
                "request_id",
                "started_at",
                "model",
                "feature",
                "status",
                "tokens",
                "cost_usd",
                "cost_usd_exact",
            ],
            (
                [
                    r.request_id,
                    r.started_at.isoformat(),
                    r.deployment_name,
                    r.feature,
                    r.status,
                    r.prompt_tokens + r.completion_tokens,
                    cost,
                    r.cost_usd,
                ]
                for r, cost in zip(records, shown, strict=True)
            ),
        )
    return render(
        request,
        "billing/requests.html",
        {
            "team": team,
            "end_user": end_user,
            "entries": list(zip(records, shown, strict=True)),
            "total": money(sum((r.cost_usd for r in records), Decimal(0))),
            "start": start,
            "last": last,
            "back_query": _query(request, user=""),
            "csv_query": _query(request, format="csv"),
        },
    )

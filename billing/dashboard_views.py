"""Operations dashboards: traffic, errors, latency, time to first token, cost and tokens over time
and by model, provider, route, team or task category; routing distribution and fallbacks.

Who sees it: finance, compliance, tenant admins and platform admins, for the whole tenant.
Developers do not: their own figures are on their request log (tenants/portal_views.py), which
reads only their keys' records. The numbers come from billing/dashboards.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing import dashboards
from billing.charts import series_chart
from billing.models import Granularity
from gateway_site.console.access import console_context, console_view
from gateway_site.console.filters import FilterForm, refused_response
from tenants.models import Role
from tenants.selectors import teams_of_tenant

WINDOWS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
    "365d": ("Last 365 days", timedelta(days=365)),
}
DEFAULT_WINDOW = "7d"


class DashboardFilterForm(FilterForm):
    window = forms.ChoiceField(
        choices=[(k, label) for k, (label, _) in WINDOWS.items()], required=False, label="Period"
    )
    by = forms.ChoiceField(
        choices=[(d, d.title()) for d in dashboards.DIMENSIONS], required=False, label="Group by"
    )
    team = forms.IntegerField(required=False, min_value=1, label="Team")


def _window(key: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) in whole buckets, the current (partial) one included."""
    span = WINDOWS[key][1]
    hourly = span <= dashboards.HOURLY_UP_TO
    floor = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if not hourly:
        floor = floor.replace(hour=0)
    end = floor + (timedelta(hours=1) if hourly else timedelta(days=1))
    return end - span, end


def _query(request: HttpRequest, **changes: str) -> str:
    params = {k: v for k, v in request.GET.items()} | changes
    return urlencode({k: v for k, v in params.items() if v})


def _charts(board: dashboards.Dashboard) -> list[Any]:
    hourly = board.granularity == Granularity.HOUR
    moments, series = board.buckets, board.series

    def seen(values: list[float | None]) -> list[float | None]:
        return [v if f.requests else None for v, f in zip(values, series, strict=True)]

    charts = [
        series_chart(
            "Requests and errors",
            moments,
            {
                "requests": [float(f.requests) for f in series],
                "errors": [float(f.errors) for f in series],
                "rejected": [float(f.rejected) for f in series],
                "fallbacks": [float(f.fallbacks) for f in series],
            },
            hourly=hourly,
        ),
        series_chart(
            "Latency (ms)",
            moments,
            {
                "p50": seen([f.p50_ms for f in series]),
                "p95": seen([f.p95_ms for f in series]),
                "p99": seen([f.p99_ms for f in series]),
            },
            unit="ms",
            hourly=hourly,
            summarise="peak",
        ),
        series_chart(
            "Time to first token, streams (ms)",
            moments,
            {
                "p50": seen([f.ttft_p50_ms for f in series]),
                "p95": seen([f.ttft_p95_ms for f in series]),
            },
            unit="ms",
            hourly=hourly,
            summarise="peak",
        ),
        series_chart(
            "Cost (USD)",
            moments,
            {"cost": [float(f.cost_usd) for f in series]},
            unit="$",
            hourly=hourly,
        ),
        series_chart(
            "Tokens",
            moments,
            {
                "prompt": [float(f.prompt_tokens) for f in series],
                "completion": [float(f.completion_tokens) for f in series],
            },
            hourly=hourly,
        ),
    ]
    return [chart for chart in charts if chart is not None]


@console_view(Role.FINANCE, Role.COMPLIANCE, Role.TENANT_ADMIN)
def dashboard(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    form = DashboardFilterForm(request.GET or None)
    if form.refused:
        return refused_response(request, form, what="shown")
    data = form.cleaned_data if form.is_bound else {}
    key = data.get("window") or DEFAULT_WINDOW
    by = data.get("by") or "model"
    teams = list(teams_of_tenant(tenant=ctx.tenant))
    team = next((t for t in teams if t.id == data.get("team")), None)
    if data.get("team") and team is None:
        form.add_error("team", "No such team in this tenant.")
        return refused_response(request, form, what="shown")
    now = timezone.now()
    start, end = _window(key, now)
    team_id = team.id if team else None
    board = dashboards.dashboard(
        tenant=ctx.tenant, start=start, end=end, dimension=by, team_id=team_id
    )
    return render(
        request,
        "billing/dashboard.html",
        {
            "board": board,
            "charts": _charts(board),
            "by": by,
            "team": team,
            "teams": teams,
            "window_label": WINDOWS[key][0],
            "start": start,
            "end": end,
            "windows": [
                (label, "?" + _query(request, window=k), k == key)
                for k, (label, _) in WINDOWS.items()
            ],
            "dimensions": [
                (d.title(), "?" + _query(request, by=d), d == by) for d in dashboards.DIMENSIONS
            ],
            "fallbacks": dashboards.recent_fallbacks(tenant=ctx.tenant, end=end, team_id=team_id),
            "can_open_records": ctx.has_role(Role.COMPLIANCE),
            "hourly": board.granularity == Granularity.HOUR,
        },
    )

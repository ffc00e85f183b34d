"""The dashboards page: traffic, latency, first token, cost by model/provider/route/team/category,
routing distribution and fallbacks, from the rollups; scoped by tenant and role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditRecord, AuditStatus
from billing import dashboards
from billing.models import Granularity
from billing.rollups import rollup_window
from tenants.models import Role
from tests.billing.support import record
from tests.console.conftest import Acme, make_acme

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def acme(settings: Any) -> Acme:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


def _client(acme: Acme, who: str) -> Client:
    client = Client()
    client.force_login(acme.users[who])
    return client


def _routed(
    rec: AuditRecord,
    *,
    route: str,
    provider: str,
    category: str = "",
    tried: int = 1,
    ttft: float | None = None,
) -> AuditRecord:
    rec.route_alias, rec.provider_name = route, provider
    rec.routing = {"strategy": "ordered", "category": category or None}
    rec.attempts = [
        {"deployment": f"dead-{i}", "provider": provider, "status": 503, "error": "upstream 503"}
        for i in range(tried - 1)
    ] + [{"deployment": rec.deployment_name, "provider": provider, "status": 200, "error": ""}]
    rec.ttft_ms = ttft
    rec.stream = ttft is not None
    return rec


def _traffic(acme: Acme) -> datetime:
    hour = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    at = hour - timedelta(hours=2)
    AuditRecord.objects.bulk_create(
        [
            _routed(
                record(
                    acme.key,
                    at + timedelta(minutes=1),
                    cost=Decimal("0.10"),
                    model="gpt-4o",
                    latency_ms=100,
                ),
                route="chat",
                provider="openai",
                category="coding",
                ttft=40.0,
            ),
            _routed(
                record(
                    acme.key,
                    at + timedelta(minutes=2),
                    cost=Decimal("0.20"),
                    model="gpt-4o",
                    latency_ms=300,
                ),
                route="chat",
                provider="openai",
                category="coding",
                ttft=60.0,
            ),
            _routed(
                record(
                    acme.key,
                    at + timedelta(minutes=3),
                    cost=Decimal("0.05"),
                    model="claude-sonnet-4",
                    latency_ms=900,
                ),
                route="chat",
                provider="anthropic",
                category="summary",
                tried=2,
            ),
            _routed(
                record(
                    acme.key,
                    at + timedelta(minutes=4),
                    cost=Decimal("0"),
                    model="gpt-4o",
                    status=AuditStatus.UPSTREAM_ERROR,
                    latency_ms=50,
                ),
                route="chat",
                provider="openai",
            ),
            _routed(
                record(
                    acme.other_key,
                    at + timedelta(minutes=5),
                    cost=Decimal("42"),
                    model="secret-model",
                ),
                route="theirs",
                provider="elsewhere",
            ),
        ]
    )
    for granularity, step in (
        (Granularity.HOUR, timedelta(hours=1)),
        (Granularity.DAY, timedelta(days=1)),
    ):
        start = at if granularity == Granularity.HOUR else at.replace(hour=0)
        rollup_window(granularity=granularity, start=start, end=start + step)
    return at


def test_the_dashboard_shows_traffic_routing_and_fallbacks_of_its_own_tenant(acme: Acme) -> None:
    _traffic(acme)
    client = _client(acme, Role.FINANCE)
    url = f"/console/t/{acme.tenant.slug}/finance/dashboard/"

    page = client.get(url, {"window": "24h", "by": "provider"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="requests">4<' in html
    assert 'data-testid="errors">1<' in html
    assert 'data-testid="fallbacks">1<' in html
    assert "$0.35" in html  # 0.10 + 0.20 + 0.05
    assert 'data-key="openai"' in html and 'data-key="anthropic"' in html
    assert "secret-model" not in html and "elsewhere" not in html and "42.00" not in html
    assert html.count('data-testid="chart"') == 5  # requests, latency, first token, cost, tokens
    # Routing distribution: the chat route's three deployments, with their shares.
    assert 'data-route="chat"' in html and "claude-sonnet-4" in html
    assert "dead-0" in html  # the recent fallback lists what was tried first

    by_category = client.get(url, {"window": "24h", "by": "category"}).content.decode()
    assert 'data-key="coding"' in by_category and 'data-key="summary"' in by_category

    year = client.get(url, {"window": "365d", "by": "team"}).content.decode()
    assert "Quants" in year and 'data-testid="requests">4<' in year  # the daily rollups


def test_figures_by_model_with_latency_and_first_token(acme: Acme) -> None:
    at = _traffic(acme)
    board = dashboards.dashboard(
        tenant=acme.tenant, start=at, end=at + timedelta(hours=1), dimension="model"
    )
    by_model = {g.key: g.figures for g in board.groups}
    assert by_model["gpt-4o"].requests == 3 and by_model["gpt-4o"].errors == 1
    assert by_model["claude-sonnet-4"].fallbacks == 1
    assert board.total.cost_usd == Decimal("0.35")
    assert board.series[0].ttft_p50_ms is not None
    assert by_model["claude-sonnet-4"].p50_ms == 900.0
    shares = {(r.route, r.deployment): r.share for r in board.routing}
    assert shares[("chat", "gpt-4o")] == pytest.approx(0.75)


def test_who_may_see_the_dashboards(acme: Acme) -> None:
    url = f"/console/t/{acme.tenant.slug}/finance/dashboard/"
    for role in (Role.FINANCE, Role.COMPLIANCE, Role.TENANT_ADMIN):
        assert _client(acme, role).get(url).status_code == 200, role
    assert _client(acme, Role.DEVELOPER).get(url).status_code == 403
    assert _client(acme, "outsider").get(url).status_code == 404


def test_invalid_filters_show_nothing(acme: Acme) -> None:
    _traffic(acme)
    client = _client(acme, Role.FINANCE)
    url = f"/console/t/{acme.tenant.slug}/finance/dashboard/"
    for bad in (
        {"window": "forever"},
        {"by": "colour"},
        {"team": "abc"},
        {"nope": "1"},
        {"team": "999999"},
    ):
        page = client.get(url, bad)
        assert page.status_code == 400, bad
        assert "0.35" not in page.content.decode()


def test_a_count_chart_labels_its_axis_with_whole_numbers_each_once() -> None:
    """One request in a week read "0, 0, 1, 1, 1" on the axis: each label once, and true."""
    from billing.charts import series_chart

    moments = [datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(3)]
    chart = series_chart("Requests", moments, {"requests": [0.0, 1.0, None]})
    assert chart is not None
    assert [tick.text for tick in chart.y_ticks] == ["0", "1"]
    many = series_chart("Tokens", moments, {"prompt": [0.0, 12.0, 3.0]})
    assert many is not None
    assert [tick.text for tick in many.y_ticks] == ["0", "3", "6", "9", "12"]
    cost = series_chart("Cost", moments, {"cost": [0.0, 0.0125, None]}, unit="$")
    assert cost is not None and cost.y_ticks[-1].text == "$0.0125"

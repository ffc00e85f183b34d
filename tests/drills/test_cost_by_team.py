"""Drill: finance asks for the cost breakdown by team for last month, and gets it to the cent.

The seed's third incident: finance asked for cost per team and got one aggregate number. Here
three teams' traffic over last month (generated audit records) is rolled up; a finance member
signs in, clicks "Cost" then "Last month", and the page shows each team's cost equal to the sum
of its records to the cent; the CSV export matches the page. Then an injected provider error
burst, a cost spike and a PII spike each raise exactly one alert, delivered to a local webhook
receiver, and resolve when the condition ends.
Run alone: `pytest tests/drills/test_cost_by_team.py`.
"""

from __future__ import annotations

import calendar
import csv
import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditRecord, AuditStatus
from audit.observability.alert_settings import AlertSettings
from audit.observability.alerts.services import alerts_evaluate
from billing.models import Granularity
from billing.money import QUANTUM, money
from billing.rollups import rollup_window
from tenants import services as tenants
from tests.billing.support import Ledger, make_ledger, month_of_traffic, record
from tests.observability.receiver import webhook_receiver
from tests.support.browser import PASSWORD, browser, console_gateway, page, sign_in

__all__ = ["browser", "console_gateway", "page"]  # fixtures used below

pytestmark = [pytest.mark.django_db]

CENT = Decimal("0.01")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _last_month() -> tuple[datetime, int]:
    first_this = (
        timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    start = (first_this - timedelta(days=1)).replace(day=1)
    return start, calendar.monthrange(start.year, start.month)[1]


@pytest.fixture(scope="module")
def last_month_ledger(world: Any, django_db_blocker: Any) -> tuple[Ledger, dict[str, Decimal]]:
    """Committed: the live gateway serves the finance pages from it."""
    with django_db_blocker.unblock():
        ledger = make_ledger("finance-drill")
        start, days = _last_month()
        records = month_of_traffic(ledger, start, days=days, per_day=60, seed=11)
        # Traffic this month too, which the "last month" view must leave out.
        month_of_traffic(ledger, start + timedelta(days=days), days=1, per_day=20, seed=12)
        rollup_window(
            granularity=Granularity.DAY, start=start, end=timezone.now() + timedelta(days=1)
        )
        tenants.member_apply(
            tenant=ledger.tenant,
            username="drill-fiona",
            email="fiona@example.com",
            role="finance",
            teams=[],
            password=PASSWORD,
        )
        expected: dict[str, Decimal] = defaultdict(Decimal)
        names = {team.id: team.name for team in ledger.teams}
        for r in records:
            if r.team_id in names:
                expected[names[r.team_id]] += r.cost_usd
    return ledger, dict(expected)


def test_finance_gets_last_months_cost_by_team_in_two_clicks_to_the_cent(
    page: Any, last_month_ledger: tuple[Ledger, dict[str, Decimal]]
) -> None:
    ledger, expected = last_month_ledger
    sign_in(page, "drill-fiona")
    page.goto(f"/console/t/{ledger.tenant.slug}/")

    page.get_by_role("link", name="Cost", exact=True).click()  # click 1
    page.get_by_role("link", name="Last month", exact=True).click()  # click 2
    page.wait_for_load_state()

    shown = {}
    for row in page.get_by_test_id("cost-table").locator("tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        shown[cells[0].strip()] = Decimal(cells[1].replace(",", ""))
    # To the cent, and at the page's own precision the rows add up to the total (billing/money.py).
    assert {team: _cents(cost) for team, cost in shown.items()} == {
        team: _cents(cost) for team, cost in expected.items()
    }
    assert all(abs(shown[team] - money(cost)) <= QUANTUM for team, cost in expected.items())
    assert len(shown) == 3
    total = Decimal(page.get_by_test_id("total").inner_text().replace(",", ""))
    assert total == sum(shown.values()) == money(sum(expected.values(), Decimal(0)))

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert {row["team"]: Decimal(row["cost_usd"]) for row in exported} == shown

    # Drill-down: team → user → requests, and the requests add up to the user's cost.
    team = max(expected, key=lambda name: expected[name])
    page.get_by_role("link", name=team, exact=True).click()
    first_user = page.get_by_test_id("cost-table").locator("tbody tr").first
    user_cost = Decimal(first_user.locator("td").nth(1).inner_text().replace(",", ""))
    first_user.locator("a").click()
    costs = page.get_by_test_id("requests-table").get_by_test_id("cost").all_inner_texts()
    listed = Decimal(page.get_by_test_id("total").inner_text().replace(",", ""))
    assert sum((Decimal(c) for c in costs), Decimal(0)) == listed
    assert _cents(listed) == _cents(user_cost) and abs(listed - user_cost) <= QUANTUM


NOW = datetime(2026, 6, 17, 14, 0, tzinfo=UTC)


def test_an_error_burst_a_cost_spike_and_a_pii_spike_each_raise_one_alert_then_resolve() -> None:
    ledger = make_ledger("alert-drill")
    # A normal fortnight: every team spends a little every hour, a request now and then has PII.
    month_of_traffic(ledger, NOW - timedelta(days=14), days=14, per_day=96, seed=5)
    calm = [
        record(ledger.keys[i % 3], NOW - timedelta(minutes=50 - i), cost=Decimal("0.01"))
        for i in range(45)
    ]
    AuditRecord.objects.bulk_create(calm)
    burst_at = NOW - timedelta(minutes=3)
    incident = [
        # Provider error burst on one deployment: 12 of 15 attempts fail.
        *[
            _with_attempts(
                record(
                    ledger.keys[0],
                    burst_at + timedelta(seconds=i),
                    cost=Decimal(0),
                    model="flaky-gpt",
                ),
                "flaky-gpt",
                failed=i < 12,
            )
            for i in range(15)
        ],
        # Cost spike: the sales team spends $40 in ten minutes.
        *[
            record(ledger.keys[2], NOW - timedelta(minutes=10 - i), cost=Decimal("4.00"))
            for i in range(10)
        ],
        # PII spike: eight requests in a row carry an email address.
        *[
            record(
                ledger.keys[1],
                burst_at + timedelta(seconds=20 + i),
                cost=Decimal("0.001"),
                guardrail_findings=[{"check": "pii", "entity": "EMAIL_ADDRESS", "action": "mask"}],
            )
            for i in range(8)
        ],
    ]
    AuditRecord.objects.bulk_create(incident)

    with webhook_receiver() as hook:
        config = AlertSettings(webhook_urls=(hook.url,))
        alerts_evaluate(now=NOW, config=config)
        alerts_evaluate(now=NOW + timedelta(minutes=1), config=config)  # still firing: no repeat

        mine = {
            "provider_error_rate": "deployment:flaky-gpt",
            "cost_spike": f"team:{ledger.keys[2].team_id}",
            "pii_spike": f"tenant:{ledger.tenant.id}",
        }
        firing = [e for e in hook.events() if e[0] == "alert.firing"]
        for rule, subject in mine.items():
            assert firing.count(("alert.firing", rule, subject)) == 1, hook.events()
        assert not [e for e in firing if e[1] == "cost_spike" and e[2] != mine["cost_spike"]]

        # The conditions end: two hours later, traffic is back to normal.
        later = NOW + timedelta(hours=2)
        AuditRecord.objects.bulk_create(
            record(ledger.keys[i % 3], later - timedelta(minutes=i), cost=Decimal("0.01"))
            for i in range(20)
        )
        alerts_evaluate(now=later, config=config)

        for rule, subject in mine.items():
            assert hook.events(rule).count(("alert.resolved", rule, subject)) == 1
        spike = next(p for p in hook.received if p["rule"] == "cost_spike")
        assert Decimal(spike["context"]["cost_usd"]) >= Decimal("40")


def _with_attempts(r: AuditRecord, deployment: str, *, failed: bool) -> AuditRecord:
    r.attempts = [
        {
            "deployment": deployment,
            "provider": "flaky-provider",
            "status": 503 if failed else 200,
            "error": "server_error" if failed else "",
        }
    ]
    if failed:
        r.status = AuditStatus.UPSTREAM_ERROR
    return r

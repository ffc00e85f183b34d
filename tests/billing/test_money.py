"""Money as the console shows it: one precision and rounding rule, rows that add up to the total
shown, one forecast computation, and "By model" keyed by the deployment that served."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client

from audit.models import AuditRecord, AuditStatus
from billing.models import Granularity
from billing.money import allocate, money, pace_projection
from billing.rollups import rollup_window
from tenants.models import Role
from tenants.quotas import services as quotas
from tenants.quotas.models import SpendEntry
from tests.billing.support import record
from tests.console.conftest import Acme, make_acme

pytestmark = [pytest.mark.django_db]

# Mid-month, so the month has spend so far and days left; the spend is on the 14th.
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 14, tzinfo=UTC)


@pytest.fixture
def acme(settings: Any) -> Acme:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


def _finance(acme: Acme) -> Client:
    client = Client()
    client.force_login(acme.users[Role.FINANCE])
    return client


def _roll(records: list[AuditRecord]) -> None:
    AuditRecord.objects.bulk_create(records)
    rollup_window(granularity=Granularity.DAY, start=DAY, end=DAY + timedelta(days=1))


def _cells(html: str, testid: str) -> list[Decimal]:
    return [
        Decimal(v.replace(",", "")) for v in re.findall(rf'data-testid="{testid}">([\d.,]+)<', html)
    ]


def test_rounding_each_row_alone_would_not_add_up_so_the_rows_are_allocated() -> None:
    exact = [Decimal("0.00333333")] * 3

    shown = allocate(exact)

    assert [money(a) for a in exact] == [Decimal("0.0033")] * 3  # 0.0099: not the total
    assert shown == [Decimal("0.0034"), Decimal("0.0033"), Decimal("0.0033")]
    assert sum(shown) == money(sum(exact)) == Decimal("0.0100")


def test_the_largest_remainders_get_the_missing_units() -> None:
    shown = allocate([Decimal("0.00011"), Decimal("0.00019"), Decimal("0.00005")])

    assert shown == [Decimal("0.0001"), Decimal("0.0002"), Decimal("0.0001")]
    assert sum(shown) == money(Decimal("0.00035"))


@time_machine.travel(NOW, tick=False)
def test_per_user_rows_add_up_to_the_total_on_the_page_and_in_the_csv(acme: Acme) -> None:
    _roll(
        [
            record(acme.key, DAY + timedelta(hours=h), cost=Decimal("0.00333333"), user=f"u{h}")
            for h in range(3)
        ]
    )
    url = f"/console/t/{acme.tenant.slug}/finance/teams/{acme.team.id}/"

    html = _finance(acme).get(url, {"period": "this_month"}).content.decode()
    export = _finance(acme).get(url, {"period": "this_month", "format": "csv"})

    rows, (total,) = _cells(html, "cost"), _cells(html, "total")
    assert len(rows) == 3 and sum(rows) == total == Decimal("0.0100")
    csv_rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert sum(Decimal(r["cost_usd"]) for r in csv_rows) == total


@time_machine.travel(NOW, tick=False)
def test_every_page_shows_one_requests_cost_with_the_same_precision(acme: Acme) -> None:
    (one,) = [record(acme.key, DAY + timedelta(hours=1), cost=Decimal("0.000368"), user="ana")]
    _roll([one])
    pages = {
        "finance": f"/console/t/{acme.tenant.slug}/finance/?by=user",
        "team": f"/console/t/{acme.tenant.slug}/finance/teams/{acme.team.id}/",
        "requests": f"/console/t/{acme.tenant.slug}/finance/teams/{acme.team.id}/requests/?user=ana",
        "record": f"/console/t/{acme.tenant.slug}/compliance/records/{one.request_id}/",
        "search": f"/console/t/{acme.tenant.slug}/compliance/?end_user=ana",
        "key": f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/",
    }
    admin = Client()
    admin.force_login(acme.users[Role.PLATFORM_ADMIN])

    for name, url in pages.items():
        html = admin.get(url).content.decode()
        assert "0.0004" in html, name
        assert "0.000368" not in html and "0.00037" not in html, name


@time_machine.travel(NOW, tick=False)
def test_the_month_forecast_and_a_monthly_budgets_pace_are_one_computation(acme: Acme) -> None:
    costs = [Decimal("0.0712"), Decimal("0.0421"), Decimal("0.1167")]
    _roll([record(acme.key, DAY + timedelta(hours=i), cost=c) for i, c in enumerate(costs)])
    SpendEntry.objects.bulk_create(
        SpendEntry(
            tenant=acme.tenant,
            team=acme.team,
            api_key=acme.key,
            amount_usd=c,
            occurred_at=DAY + timedelta(hours=i),
        )
        for i, c in enumerate(costs)
    )
    quotas.budget_set(tenant=acme.tenant, scope="tenant", amount_usd=Decimal("5"))

    html = _finance(acme).get(f"/console/t/{acme.tenant.slug}/finance/").content.decode()

    forecast = re.search(r'data-testid="forecast">\$([\d.,]+)<', html)
    pace = re.search(r'data-testid="budget-pace">\$([\d.,]+)', html)
    assert forecast and pace
    expected = pace_projection(
        spent=sum(costs, Decimal(0)),
        start=datetime(2026, 11, 1, tzinfo=UTC),
        end=datetime(2026, 12, 1, tzinfo=UTC),
        now=NOW,
    )
    assert Decimal(forecast.group(1)) == Decimal(pace.group(1)) == expected
    assert expected == money(Decimal("0.23") / (Decimal("14.5") / 30))  # 14.5 of 30 days gone


def test_a_projection_in_the_first_minutes_is_bounded() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    projected = pace_projection(
        spent=Decimal("0.01"), start=start, end=start + timedelta(days=31), now=start
    )
    assert projected == Decimal("1.0000")  # 0.01 over at least 1% of the window


@time_machine.travel(NOW, tick=False)
def test_by_model_groups_by_the_deployment_that_served(acme: Acme) -> None:
    served_via_alias = record(acme.key, DAY + timedelta(hours=1), cost=Decimal("0.2"))
    served_via_alias.model_requested, served_via_alias.deployment_name = "demo", "mock-gpt"
    asked_directly = record(acme.key, DAY + timedelta(hours=2), cost=Decimal("0.1"))
    asked_directly.model_requested = asked_directly.deployment_name = "mock-gpt"
    refused = record(
        acme.key,
        DAY + timedelta(hours=3),
        cost=Decimal(0),
        model="gpt-typo",
        status=AuditStatus.REJECTED,
    )
    _roll([served_via_alias, asked_directly, refused])

    html = _finance(acme).get(f"/console/t/{acme.tenant.slug}/finance/?by=model").content.decode()

    table = html.split('data-testid="cost-table"')[1].split("</table>")[0]
    keys = re.findall(r'<tr data-key="([^"]*)">', table)
    assert keys == ["mock-gpt", ""]
    assert "(not served)" in table
    assert "demo" not in table and "gpt-typo" not in table


@time_machine.travel(NOW, tick=False)
def test_a_keys_few_requests_add_up_to_its_usage(acme: Acme) -> None:
    AuditRecord.objects.bulk_create(
        [record(acme.key, DAY + timedelta(hours=h), cost=Decimal("0.000069")) for h in range(3)]
    )
    developer = Client()
    developer.force_login(acme.users[Role.DEVELOPER])

    html = developer.get(f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/").content.decode()

    table = html.split("<tbody>")[-1].split("</tbody>")[0]
    rows = [Decimal(v) for v in re.findall(r'<td class="num">(\d+\.\d{4})</td>', table)]
    assert len(rows) == 3
    assert sum(rows) == Decimal("0.0002")  # the usage card's total (0.000207)
    assert "<dd>0.0002</dd>" in html

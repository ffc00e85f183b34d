"""The finance pages: who may see them, what they show, and that the CSV says the same."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditRecord
from billing.models import Granularity
from billing.rollups import rollup_window
from tenants.models import Role
from tenants.quotas import services as quotas
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


def _spend(acme: Acme) -> datetime:
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    at = today - timedelta(days=1) if today.day > 1 else today
    AuditRecord.objects.bulk_create(
        [
            record(acme.key, at + timedelta(hours=1), cost=Decimal("1.234"), user="ana"),
            record(acme.key, at + timedelta(hours=2), cost=Decimal("0.5"), user="ana"),
            record(acme.key, at + timedelta(hours=3), cost=Decimal("2.0"), user="bo"),
            record(acme.other_key, at + timedelta(hours=1), cost=Decimal("99")),
        ]
    )
    rollup_window(granularity=Granularity.DAY, start=at, end=at + timedelta(days=1))
    return at


def test_finance_sees_cost_by_team_and_the_csv_matches(acme: Acme) -> None:
    _spend(acme)
    client = _client(acme, Role.FINANCE)
    url = f"/console/t/{acme.tenant.slug}/finance/"

    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Quants" in html and "3.7340" in html  # 1.234 + 0.5 + 2.0
    assert "99.00" not in html  # another tenant's spend
    assert "<svg" in html and "Month to date" in html
    assert 'data-testid="total-requests">3<' in html  # the total row adds every column up

    export = client.get(url, {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [(r["team"], r["cost_usd"], r["requests"]) for r in rows] == [("Quants", "3.7340", "3")]


def test_drill_down_from_team_to_user_to_requests(acme: Acme) -> None:
    _spend(acme)
    client = _client(acme, Role.FINANCE)
    team_page = client.get(f"/console/t/{acme.tenant.slug}/finance/teams/{acme.team.id}/")
    html = team_page.content.decode()
    assert "ana" in html and "1.73" in html and "bo" in html

    requests = client.get(
        f"/console/t/{acme.tenant.slug}/finance/teams/{acme.team.id}/requests/",
        {"user": "ana", "format": "csv"},
    )
    rows = list(csv.DictReader(io.StringIO(requests.content.decode())))
    assert sorted(Decimal(r["cost_usd"]) for r in rows) == [Decimal("0.5"), Decimal("1.234")]


@pytest.mark.parametrize(
    "query",
    [
        "period=custom&start=2026-13-01&end=2026-12-31",
        "period=custom&start=2026-12-01",  # no end: not silently "this month"
        "period=fortnight",
        "by=colour",
        "period=custom&start=2026-12-31&end=2026-12-01",
        "start=2024-01-01&end=2026-12-31",  # longer than a year: refused, not cut short
        "perid=last_month",
    ],
)
def test_invalid_finance_filters_show_errors_and_no_cost(acme: Acme, query: str) -> None:
    _spend(acme)
    client = _client(acme, Role.FINANCE)
    url = f"/console/t/{acme.tenant.slug}/finance/?{query}"

    page = client.get(url)
    export = client.get(url + "&format=csv")

    html = page.content.decode()
    assert page.status_code == 400
    assert 'data-testid="filter-errors"' in html
    assert "Quants" not in html.split('data-testid="cost-table"')[1]
    assert export.status_code == 400
    assert "nothing was exported" in export.content.decode()


def test_a_date_that_does_not_parse_is_named_beside_its_field(acme: Acme) -> None:
    client = _client(acme, Role.FINANCE)
    url = f"/console/t/{acme.tenant.slug}/finance/?period=custom&start=2026-13-01&end=2026-12-31"

    html = client.get(url).content.decode()

    assert "From (UTC): Enter a valid date." in html
    assert "needs a start and an end" not in html  # it has one; it does not parse


def test_invalid_filters_on_the_team_and_requests_pages_show_nothing(acme: Acme) -> None:
    _spend(acme)
    client = _client(acme, Role.FINANCE)
    base = f"/console/t/{acme.tenant.slug}/finance/teams/{acme.team.id}/"

    team = client.get(base + "?period=custom&start=bad&end=2026-01-01")
    requests = client.get(base + "requests/?user=ana&by=nothing&format=csv")

    assert team.status_code == 400 and "ana" not in team.content.decode()
    assert requests.status_code == 400
    assert "cost_usd" not in requests.content.decode()


def test_another_tenants_team_is_not_found(acme: Acme) -> None:
    client = _client(acme, Role.FINANCE)
    other_team = acme.other_key.team_id
    response = client.get(f"/console/t/{acme.tenant.slug}/finance/teams/{other_team}/")
    assert response.status_code == 404


@pytest.mark.parametrize("who,status", [(Role.DEVELOPER, 403), ("outsider", 404)])
def test_people_without_the_role_or_the_tenant_see_no_cost(
    acme: Acme, who: str, status: int
) -> None:
    _spend(acme)
    client = _client(acme, who)
    for path in ("", f"teams/{acme.team.id}/", f"teams/{acme.team.id}/requests/?user=ana"):
        response = client.get(f"/console/t/{acme.tenant.slug}/finance/{path}")
        assert response.status_code == status
        assert "3.73" not in response.content.decode()


def test_a_budget_shows_its_burn_down(acme: Acme) -> None:
    quotas.budget_set(tenant=acme.tenant, scope="team", team=acme.team, amount_usd=Decimal("50"))
    page = _client(acme, Role.TENANT_ADMIN).get(f"/console/t/{acme.tenant.slug}/finance/")
    html = page.content.decode()
    assert "monthly budget of team" in html and "$50.00" in html and "<meter" in html


def test_a_platform_admin_adds_a_price_version_from_the_console(acme: Acme) -> None:
    from audit.activity.models import ActivityEvent
    from billing.models import Price
    from routing import services as routing
    from routing.models import Provider

    provider = Provider.objects.create(name="console-p", kind="openai", base_url="http://x/v1")
    deployment = routing.deployment_upsert(
        name="console-priced",
        provider=provider,
        upstream_model="gpt-4o",
        input_price_per_mtok=Decimal(0),
        output_price_per_mtok=Decimal(0),
    )
    url = f"/console/t/{acme.tenant.slug}/finance/prices/"
    admin = _client(acme, Role.PLATFORM_ADMIN)
    page = admin.get(url).content.decode()
    assert "console-priced" in page and "2.5000" in page  # the shipped list's gpt-4o price

    response = admin.post(
        url,
        {"deployment": deployment.id, "input_per_mtok": "3", "output_per_mtok": "12"},
    )

    assert response.status_code == 302
    price = Price.objects.get(deployment=deployment)
    assert (price.input_per_mtok, price.source) == (Decimal(3), "console")
    event = ActivityEvent.objects.get(action="price.set", target_id=str(price.id))
    assert event.actor_label == acme.users[Role.PLATFORM_ADMIN].username
    assert _client(acme, Role.FINANCE).get(url).status_code == 403


def test_a_platform_admin_sets_keeps_and_removes_tool_fees_from_the_console(acme: Acme) -> None:
    from billing.models import Price
    from routing import services as routing
    from routing.models import Provider

    provider = Provider.objects.create(name="console-t", kind="openai", base_url="http://x/v1")
    deployment = routing.deployment_upsert(
        name="console-searching",
        provider=provider,
        upstream_model="gpt-4.1",
        input_price_per_mtok=Decimal(0),
        output_price_per_mtok=Decimal(0),
    )
    url = f"/console/t/{acme.tenant.slug}/finance/prices/"
    admin = _client(acme, Role.PLATFORM_ADMIN)
    base = {"deployment": deployment.id, "input_per_mtok": "2", "output_per_mtok": "8"}

    def versions() -> list[dict[str, str]]:
        prices = Price.objects.filter(deployment=deployment).order_by("effective_from", "id")
        return [p.per_tool_call_usd for p in prices]

    set_fees = admin.post(url, {**base, "tool_fees": "web_search=0.025, file_search = 0.0025"})
    assert set_fees.status_code == 302
    assert versions() == [{"file_search": "0.0025", "web_search": "0.025"}]
    page = admin.get(url).content.decode()
    assert "<code>web_search</code> 0.025" in page  # in force, and in the history

    assert admin.post(url, {**base, "input_per_mtok": "3"}).status_code == 302  # left empty
    assert versions()[-1] == {"file_search": "0.0025", "web_search": "0.025"}  # carried over

    assert admin.post(url, {**base, "tool_fees": "none"}).status_code == 302
    assert versions()[-1] == {}

    for bad, says in (
        ("web_search", "write a tool and its fee"),
        ("Web Search=0.01", "is not a tool type"),
        ("web_search=-1", "0 to 1,000 USD"),
        ("web_search=abc", "not an amount in USD"),
        ("web_search=NaN", "not an amount in USD"),
        ("web_search=1, web_search=2", "named twice"),
    ):
        refused = admin.post(url, {**base, "tool_fees": bad})
        assert refused.status_code == 400, bad
        assert says in refused.content.decode(), bad
    assert len(versions()) == 3  # nothing saved by a refused form


def test_alerts_are_listed_for_their_tenant_only(acme: Acme) -> None:
    from audit.observability.models import Alert

    now = timezone.now()
    common = {"status": "firing", "opened_at": now, "last_seen_at": now}
    Alert.objects.create(
        rule="cost_spike", subject="team:1", tenant=acme.tenant, message="ours spiked", **common
    )
    Alert.objects.create(
        rule="cost_spike",
        subject="team:2",
        tenant=acme.other_key.tenant,
        message="theirs spiked",
        **common,
    )
    html = (
        _client(acme, Role.TENANT_ADMIN)
        .get(f"/console/t/{acme.tenant.slug}/alerts/")
        .content.decode()
    )
    assert "ours spiked" in html and "theirs spiked" not in html

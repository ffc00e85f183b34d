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
from quotas import services as quotas
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
    assert "Quants" in html and "3.73" in html  # 1.234 + 0.5 + 2.0
    assert "99.00" not in html  # another tenant's spend
    assert "<svg" in html and "Month to date" in html

    export = client.get(url, {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [(r["team"], r["cost_usd"], r["requests"]) for r in rows] == [("Quants", "3.73", "3")]


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

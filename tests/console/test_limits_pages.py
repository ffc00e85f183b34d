"""The limits and budgets page: tenant admins set rules, finance reads them, nobody else does."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.test import Client
from django.urls import reverse

from audit.activity.models import ActivityEvent
from tenants.quotas import services
from tenants.quotas.models import Budget, RateLimit, SpendEntry
from tests.console.conftest import Acme


def signed_in(acme: Acme, role: str) -> Client:
    client = Client()
    client.force_login(acme.users[role])
    return client


def url(acme: Acme, name: str = "quotas:limits", **kwargs: object) -> str:
    return reverse(name, kwargs={"tenant_slug": acme.tenant.slug, **kwargs})


def test_a_tenant_admin_sets_a_team_budget_and_sees_what_is_spent(acme: Acme) -> None:
    client = signed_in(acme, "tenant_admin")
    response = client.post(
        url(acme, "quotas:budget_save"),
        {
            "scope": "team",
            "team": acme.team.pk,
            "amount_usd": "250",
            "period": "month",
            "timezone": "Europe/Paris",
            "alert_thresholds_pct": "95, 50,80",
        },
    )
    assert response.status_code == 302
    budget = Budget.objects.get(tenant=acme.tenant, team=acme.team)
    assert budget.amount_usd == Decimal("250") and budget.timezone == "Europe/Paris"
    assert budget.alert_thresholds_pct == [50, 80, 95]  # sorted
    event = ActivityEvent.objects.get(action="budget.create", tenant=acme.tenant)
    assert event.actor_user_id == acme.users["tenant_admin"].pk

    SpendEntry.objects.create(
        tenant=acme.tenant,
        team=acme.team,
        amount_usd=Decimal("12.5"),
        occurred_at=datetime.now(UTC),
    )
    page = client.get(url(acme)).content.decode()
    assert "monthly budget of team" in page
    assert "$12.5000 (5%)" in page and "$237.5000" in page


def test_alert_thresholds_out_of_range_are_refused_with_a_message(acme: Acme) -> None:
    client = signed_in(acme, "tenant_admin")
    response = client.post(
        url(acme, "quotas:budget_save"),
        {
            "scope": "tenant",
            "amount_usd": "10",
            "period": "month",
            "timezone": "UTC",
            "alert_thresholds_pct": "50, 180",
        },
    )
    assert response.status_code == 200
    assert "each alert threshold is between 1 and 100" in response.content.decode()
    assert not Budget.objects.filter(tenant=acme.tenant).exists()


def test_a_limit_without_any_value_is_refused_with_a_message(acme: Acme) -> None:
    client = signed_in(acme, "tenant_admin")
    response = client.post(url(acme, "quotas:limit_save"), {"scope": "tenant"})
    assert response.status_code == 200
    assert "Set at least one of the three limits." in response.content.decode()
    assert not RateLimit.objects.filter(tenant=acme.tenant).exists()


def test_finance_reads_the_rules_but_cannot_change_or_remove_them(acme: Acme) -> None:
    limit = services.rate_limit_set(tenant=acme.tenant, scope="tenant", requests_per_minute=100)
    client = signed_in(acme, "finance")
    page = client.get(url(acme))
    assert page.status_code == 200 and "Save rate limit" not in page.content.decode()
    assert client.post(url(acme, "quotas:limit_save"), {"scope": "tenant"}).status_code == 403
    removal = url(acme, "quotas:rule_delete", kind="limit", rule_id=limit.pk)
    assert client.post(removal).status_code == 403
    assert RateLimit.objects.filter(pk=limit.pk).exists()


def test_a_rule_of_another_tenant_cannot_be_removed_through_this_tenants_page(
    acme: Acme,
) -> None:
    foreign = services.rate_limit_set(
        tenant=acme.other_key.tenant, scope="tenant", requests_per_minute=5
    )
    client = signed_in(acme, "tenant_admin")
    removal = url(acme, "quotas:rule_delete", kind="limit", rule_id=foreign.pk)
    assert client.post(removal).status_code == 404
    assert RateLimit.objects.filter(pk=foreign.pk).exists()

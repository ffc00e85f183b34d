"""Rate limits, budgets and the quota policy through the management API (tenants/quotas/services.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.activity.models import ActivityEvent
from tenants.quotas.models import Budget, RateLimit
from tests.management.conftest import Api, Side

pytestmark = pytest.mark.django_db


def test_a_key_limit_is_set_then_replaced_not_duplicated(as_ours: Api, ours: Side) -> None:
    base = f"/tenants/{ours.tenant.slug}/limits"
    body = {"scope": "key", "key_id": ours.key.pk, "requests_per_minute": 10}

    first = as_ours.post(base, body)
    second = as_ours.post(base, {**body, "requests_per_minute": 20, "shadow": True})

    assert first.status_code == 200, first.content
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["requests_per_minute"] == 20 and second.json()["shadow"] is True
    assert second.json()["key_id"] == ours.key.pk
    assert RateLimit.objects.filter(tenant=ours.tenant, scope="key").count() == 1
    actions = ActivityEvent.objects.filter(tenant=ours.tenant, actor_kind="admin_key")
    assert list(actions.values_list("action", flat=True).order_by("id")) == [
        "limit.create",
        "limit.update",
    ]


def test_a_rule_cannot_name_a_team_or_key_of_another_tenant(
    as_ours: Api, ours: Side, theirs: Side
) -> None:
    base = f"/tenants/{ours.tenant.slug}"
    by_key = as_ours.post(f"{base}/limits", {"scope": "key", "key_id": theirs.key.pk})
    by_team = as_ours.post(
        f"{base}/budgets", {"scope": "team", "team": theirs.team.slug, "amount_usd": "1"}
    )

    assert by_key.status_code == 422 and by_key.json()["error"]["fields"][0]["field"] == "key_id"
    assert by_team.status_code == 422 and by_team.json()["error"]["fields"][0]["field"] == "team"
    assert not RateLimit.objects.filter(api_key=theirs.key).exists()
    assert theirs.team.name not in by_team.content.decode()


def test_a_budget_per_end_user_is_listed_and_removed(as_ours: Api, ours: Side) -> None:
    base = f"/tenants/{ours.tenant.slug}/budgets"
    created = as_ours.post(
        base,
        {
            "scope": "user",
            "end_user": "*",
            "amount_usd": "5.50",
            "period": "day",
            "timezone": "Europe/Paris",
        },
    )

    assert created.status_code == 200, created.content
    assert Decimal(created.json()["amount_usd"]) == Decimal("5.50")
    listed = as_ours.get(base).json()
    assert listed["count"] == 2  # the tenant's own monthly budget, and this one
    assert as_ours.delete(f"{base}/{created.json()['id']}").status_code == 204
    assert not Budget.objects.filter(pk=created.json()["id"]).exists()
    assert ActivityEvent.objects.filter(action="budget.delete", tenant=ours.tenant).exists()


def test_the_services_own_checks_answer_as_422(as_ours: Api, ours: Side) -> None:
    base = f"/tenants/{ours.tenant.slug}"
    bad_zone = as_ours.post(
        f"{base}/budgets", {"scope": "tenant", "amount_usd": "1", "timezone": "Mars/Olympus"}
    )
    no_user = as_ours.post(f"{base}/limits", {"scope": "user", "requests_per_minute": 1})
    negative = as_ours.post(f"{base}/budgets", {"scope": "tenant", "amount_usd": "-1"})

    assert bad_zone.status_code == 422 and "Mars/Olympus" in bad_zone.json()["error"]["message"]
    assert no_user.status_code == 422
    assert negative.status_code == 422
    assert negative.json()["error"]["fields"][0]["field"] == "amount_usd"


def test_the_quota_policy_reads_its_defaults_then_what_was_set(as_ours: Api, ours: Side) -> None:
    path = f"/tenants/{ours.tenant.slug}/quota-policy"
    default = as_ours.get(path).json()

    updated = as_ours.put(path, {"max_request_cost_usd": "0.50", "over_ceiling": "reject"})
    refused = as_ours.put(path, {"over_ceiling": "downgrade"})

    assert default["on_store_failure_budgets"] == "closed"
    assert default["max_request_cost_usd"] is None
    assert Decimal(updated.json()["max_request_cost_usd"]) == Decimal("0.50")
    assert refused.status_code == 422
    assert "downgrade route" in refused.json()["error"]["message"]
    assert Decimal(as_ours.get(path).json()["max_request_cost_usd"]) == Decimal("0.50")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("budgets", {"scope": "tenant", "team": "hooli-research", "amount_usd": "10"}, "team"),
        ("limits", {"scope": "team", "team": "hooli-research", "end_user": "bob"}, "end_user"),
        ("limits", {"scope": "tenant", "agent": "crawler", "requests_per_minute": 1}, "agent"),
        (
            "approval-rules",
            {"scope": "tenant", "team": "hooli-research", "threshold_usd": "1"},
            "team",
        ),
    ],
)
def test_a_rule_naming_a_target_its_scope_does_not_use_is_refused(
    as_ours: Api, ours: Side, path: str, body: dict[str, object], field: str
) -> None:
    # Ignoring the target would set another scope's rule: e.g. replace the tenant's own budget.
    if "key_id" not in body and body["scope"] == "team" and path == "limits":
        body = {**body, "requests_per_minute": 1}
    before = Budget.objects.get(pk=ours.budget_id).amount_usd

    response = as_ours.post(f"/tenants/{ours.tenant.slug}/{path}", body)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["fields"][0]["field"] == field
    assert Budget.objects.get(pk=ours.budget_id).amount_usd == before
    assert not RateLimit.objects.filter(tenant=ours.tenant).exclude(pk=ours.limit_id).exists()

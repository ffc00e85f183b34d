"""Cost pre-approval in process: the rules, the decisions through the console page and the
management API, scoped by tenant and role; decided once; bound to the key and body."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.activity.models import ActivityEvent
from audit.activity.services import SYSTEM, Actor
from gateway_site.api.services import admin_key_create
from tenants.models import Role
from tenants.quotas import approvals
from tenants.quotas.models import ApprovalStatus, CostApproval
from tenants.quotas.table import load_quota_table
from tests.console.conftest import Acme, make_acme
from tests.management.conftest import Api

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def acme(settings: Any) -> Acme:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


def _held(acme: Acme, *, minutes_left: int = 60) -> CostApproval:
    now = timezone.now()
    return CostApproval.objects.create(
        public_id=f"apr_test{CostApproval.objects.count()}",
        tenant=acme.tenant,
        team=acme.team,
        api_key=acme.key,
        body_sha256=approvals.body_hash(key_id=acme.key.pk, body=b'{"a": 1, "b": 2}'),
        model="quota-chat",
        predicted_cost_usd=Decimal("0.041"),
        threshold_usd=Decimal("0.01"),
        rule_label="tenant 'acme-c'",
        held_request_id="req_held",
        created_at=now,
        expires_at=now + timedelta(minutes=minutes_left),
    )


def _key(acme: Acme, role: str) -> Api:
    _, material = admin_key_create(
        name=f"{role} bot", tenant=acme.tenant, created_by="test", actor=SYSTEM, role=role
    )
    return Api(material.plaintext)


def test_the_body_hash_ignores_key_order_and_binds_the_key() -> None:
    one = approvals.body_hash(key_id=1, body=b'{"a": 1, "b": 2}')
    assert one == approvals.body_hash(key_id=1, body=b'{"b":2,"a":1}')
    assert one != approvals.body_hash(key_id=2, body=b'{"a": 1, "b": 2}')
    assert one != approvals.body_hash(key_id=1, body=b'{"a": 1, "b": 3}')


def test_the_most_specific_rule_applies(acme: Acme) -> None:
    approvals.approval_rule_set(
        tenant=acme.tenant, scope="tenant", threshold_usd=Decimal("0.01"), actor=SYSTEM
    )
    approvals.approval_rule_set(
        tenant=acme.tenant, scope="team", team=acme.team, threshold_usd=Decimal("0.5"), actor=SYSTEM
    )
    table = load_quota_table()
    rule = table.approval(acme.tenant.pk, acme.team.pk, acme.key.pk)
    assert rule is not None and rule.threshold_usd == Decimal("0.5")
    assert table.approval(acme.tenant.pk, 0, 0).threshold_usd == Decimal("0.01")  # type: ignore[union-attr]


def test_a_budget_owner_approves_in_the_console(acme: Acme) -> None:
    held = _held(acme)
    console = Client()
    console.force_login(acme.users[Role.FINANCE])
    url = f"/console/t/{acme.tenant.slug}/limits/approvals/"
    page = console.get(url)
    assert page.status_code == 200 and held.public_id in page.content.decode()
    assert "$0.0410" in page.content.decode()
    decided = console.post(f"{url}{held.public_id}/decide/", {"decision": "approve", "note": "ok"})
    assert decided.status_code == 302
    held.refresh_from_db()
    assert held.status == ApprovalStatus.APPROVED and held.decided_by == "acme-finance"
    # By approval: the live-gateway tests' approvals are committed in the same database.
    event = ActivityEvent.objects.get(
        action="cost_approval.approve", details__approval=held.public_id
    )
    assert event.details["approval"] == held.public_id and event.actor_label == "acme-finance"
    # Decided once: a second decision changes nothing.
    console.post(f"{url}{held.public_id}/decide/", {"decision": "refuse"})
    held.refresh_from_db()
    assert held.status == ApprovalStatus.APPROVED


def test_the_console_page_is_for_budget_owners_of_the_tenant(acme: Acme) -> None:
    held = _held(acme)
    url = f"/console/t/{acme.tenant.slug}/limits/approvals/"
    for who, status in ((Role.DEVELOPER, 403), (Role.COMPLIANCE, 403), ("outsider", 404)):
        console = Client()
        console.force_login(acme.users[who])
        assert console.get(url).status_code == status, who
        decided = console.post(f"{url}{held.public_id}/decide/", {"decision": "approve"})
        assert decided.status_code == status, who
    held.refresh_from_db()
    assert held.status == ApprovalStatus.PENDING


def test_a_tenant_admin_sets_a_threshold_in_the_console(acme: Acme) -> None:
    console = Client()
    console.force_login(acme.users[Role.TENANT_ADMIN])
    url = f"/console/t/{acme.tenant.slug}/limits/approvals/rules/"
    saved = console.post(url, {"scope": "team", "team": acme.team.pk, "threshold_usd": "0.25"})
    assert saved.status_code == 302
    rule = approvals.approval_rules_of(tenant_id=acme.tenant.pk).get()
    assert rule.threshold_usd == Decimal("0.25") and rule.team_id == acme.team.pk
    refused = console.post(url, {"scope": "team", "threshold_usd": "-1"})
    assert refused.status_code == 400
    finance = Client()
    finance.force_login(acme.users[Role.FINANCE])
    assert finance.post(url, {"scope": "tenant", "threshold_usd": "9"}).status_code == 403


def test_the_api_lists_approves_and_refuses_within_the_tenant_and_role(acme: Acme) -> None:
    held, other = _held(acme), _held(acme)
    api = _key(acme, "finance")
    base = f"/tenants/{acme.tenant.slug}/cost-approvals"
    listed = api.get(base + "?status=pending")
    assert listed.status_code == 200, listed.content
    assert {item["id"] for item in listed.json()["items"]} == {held.public_id, other.public_id}
    approved = api.post(f"{base}/{held.public_id}/approve", {"note": "fine"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    again = api.post(f"{base}/{held.public_id}/refuse", {})
    assert again.status_code == 409
    assert _key(acme, "compliance").post(f"{base}/{other.public_id}/refuse", {}).status_code == 403
    outsider = f"/tenants/{acme.other_key.tenant.slug}/cost-approvals/{other.public_id}/refuse"
    assert api.post(outsider, {}).status_code == 404
    other.refresh_from_db()
    assert other.status == ApprovalStatus.PENDING


def test_an_expired_approval_cannot_be_decided(acme: Acme) -> None:
    held = _held(acme, minutes_left=-1)
    with pytest.raises(approvals.ApprovalError):
        approvals.cost_approval_decide(approval=held, approve=True, actor=SYSTEM)
    assert held.public_id not in [
        a.public_id for a in approvals.approvals_pending(tenant_id=acme.tenant.pk)
    ]


def test_rules_through_the_api(acme: Acme) -> None:
    admin = _key(acme, "tenant_admin")
    base = f"/tenants/{acme.tenant.slug}/approval-rules"
    made = admin.post(base, {"scope": "key", "key_id": acme.key.pk, "threshold_usd": "0.05"})
    assert made.status_code == 201, made.content
    assert (
        admin.post(
            base, {"scope": "key", "key_id": acme.other_key.pk, "threshold_usd": "1"}
        ).status_code
        == 422
    )
    assert admin.post(base, {"scope": "tenant", "threshold_usd": "-1"}).status_code == 422
    assert (
        _key(acme, "finance").post(base, {"scope": "tenant", "threshold_usd": "1"}).status_code
        == 403
    )
    listed = admin.get(base).json()["items"]
    assert [(r["scope"], r["key_id"], r["threshold_usd"]) for r in listed] == [
        ("key", acme.key.pk, "0.0500")
    ]
    assert admin.delete(f"{base}/{listed[0]['id']}").status_code == 204
    events = ActivityEvent.objects.filter(tenant=acme.tenant, action__startswith="approval_rule.")
    assert events.count() == 2


def test_a_budget_owner_cannot_approve_a_request_made_with_their_own_key(acme: Acme) -> None:
    # The hold asks someone else to agree to the spend: its own requester cannot wave it through.
    finance = acme.users[Role.FINANCE]
    acme.key.owner = finance
    acme.key.save(update_fields=["owner"])
    held = _held(acme)
    console = Client()
    console.force_login(finance)
    url = f"/console/t/{acme.tenant.slug}/limits/approvals/"
    console.post(f"{url}{held.public_id}/decide/", {"decision": "approve"})
    held.refresh_from_db()
    assert held.status == ApprovalStatus.PENDING
    with pytest.raises(approvals.ApprovalError, match="own key"):
        approvals.cost_approval_decide(approval=held, approve=True, actor=Actor.user(finance))
    # Refusing one's own request stays possible; another budget owner may approve.
    approvals.cost_approval_decide(
        approval=held, approve=True, actor=Actor.user(acme.users[Role.TENANT_ADMIN])
    )
    held.refresh_from_db()
    assert held.status == ApprovalStatus.APPROVED

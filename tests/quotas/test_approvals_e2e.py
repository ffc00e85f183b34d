"""Cost pre-approval on the live gateway: hold → approve → retry → served, once; refuse → retry
refused (the decisions through the management API; the console's page: test_approvals.py); another body with the same approval id refused; every step in the activity log."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from audit.activity.models import ActivityEvent
from audit.activity.services import SYSTEM
from gateway_site.api.services import admin_key_create
from tenants import services as tenants
from tenants.quotas import approvals
from tenants.quotas import services as quotas
from tenants.quotas.models import ApprovalStatus, CostApproval
from tests.conftest import wait_for_record
from tests.support.live import wait_for_config

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@dataclass
class ApprovalWorld:
    slug: str
    key: str  # under the tenant's threshold of $0.01 (a default request predicts ~$0.041)
    roomy_key: str  # its own key threshold of $1: the most specific rule applies
    finance_admin_key: str  # a finance-role admin key for the management API
    limited_key: str  # under the tenant's threshold and a limit of one request a minute


@pytest.fixture(scope="module")
def approval_world(quota_world: Any, gateway: Any, django_db_blocker: Any) -> ApprovalWorld:
    with django_db_blocker.unblock():
        tenant = tenants.tenant_apply(slug="approval-co", name="Approval Co")
        team = tenants.team_apply(tenant=tenant, slug="quant", name="Quant", allowed_models=[])
        _, material = tenants.key_create(team=team, name="research-bot")
        roomy, roomy_material = tenants.key_create(team=team, name="roomy-bot")
        limited, limited_material = tenants.key_create(team=team, name="limited-bot")
        quotas.rate_limit_set(tenant=tenant, scope="key", api_key=limited, requests_per_minute=1)
        approvals.approval_rule_set(
            tenant=tenant, scope="tenant", threshold_usd=Decimal("0.01"), actor=SYSTEM
        )
        approvals.approval_rule_set(
            tenant=tenant, scope="key", api_key=roomy, threshold_usd=Decimal("1"), actor=SYSTEM
        )
        _, admin = admin_key_create(
            name="finance bot", tenant=tenant, created_by="test", actor=SYSTEM, role="finance"
        )
    for key in (material.plaintext, roomy_material.plaintext, limited_material.plaintext):
        wait_for_config(gateway, key, "quota-chat")
    return ApprovalWorld(
        "approval-co",
        material.plaintext,
        roomy_material.plaintext,
        admin.plaintext,
        limited_material.plaintext,
    )


def _chat(gateway: Any, key: str, text: str, approval: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    if approval:
        headers["x-gateway-approval"] = approval
    body = {"model": "quota-chat", "messages": [{"role": "user", "content": text}]}
    return httpx.post(gateway.api_url + "/chat/completions", headers=headers, json=body, timeout=10)


def _held(gateway: Any, key: str, text: str) -> str:
    response = _chat(gateway, key, text)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "approval_required" and error["param"] == "x-gateway-approval"
    approval_id = response.headers["x-gateway-approval-id"]
    assert approval_id in error["message"] and "$0.0100" in error["message"]
    return approval_id


def _decide(
    gateway: Any, world: ApprovalWorld, approval_id: str, verb: str, note: str
) -> httpx.Response:
    """A finance admin key approves or refuses through the management API."""
    return httpx.post(
        f"{gateway.url}/api/v1/tenants/{world.slug}/cost-approvals/{approval_id}/{verb}",
        headers={"authorization": f"Bearer {world.finance_admin_key}"},
        json={"note": note},
    )


def test_hold_approve_retry_is_served_once(
    gateway: Any, approval_world: ApprovalWorld, mock_server: Any
) -> None:
    text = "Rebalance the whole book, please."
    before = len(mock_server.requests())
    approval_id = _held(gateway, approval_world.key, text)
    assert len(mock_server.requests()) == before  # held: no provider was called

    pending = _chat(gateway, approval_world.key, text, approval_id)
    assert pending.status_code == 403
    assert pending.json()["error"]["code"] == "approval_pending"

    api = httpx.Client(
        base_url=gateway.url + "/api/v1",
        headers={"authorization": f"Bearer {approval_world.finance_admin_key}"},
    )
    listed = api.get(f"/tenants/{approval_world.slug}/cost-approvals?status=pending")
    assert listed.status_code == 200, listed.text
    listed = listed.json()
    assert approval_id in [item["id"] for item in listed["items"]]
    decided = api.post(
        f"/tenants/{approval_world.slug}/cost-approvals/{approval_id}/approve",
        json={"note": "quarter-end run"},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"

    other = _chat(gateway, approval_world.key, text + " And the bonds.", approval_id)
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "approval_mismatch"

    served = _chat(gateway, approval_world.key, text, approval_id)
    assert served.status_code == 200, served.text
    assert served.json()["choices"][0]["message"]["content"]

    again = _chat(gateway, approval_world.key, text, approval_id)
    assert again.status_code == 403 and again.json()["error"]["code"] == "approval_used"

    record = wait_for_record(served.headers["x-request-id"])
    assert record.quota["approval"]["outcome"] == "approved"
    assert record.quota["approval"]["id"] == approval_id
    approval = CostApproval.objects.get(public_id=approval_id)
    assert approval.status == ApprovalStatus.USED
    assert approval.used_request_id == served.headers["x-request-id"]
    held = wait_for_record(approval.held_request_id)
    assert held.status == "rejected" and held.error_type == "approval_required"
    assert approval_id in held.error_message
    actions = list(
        ActivityEvent.objects.filter(details__approval=approval_id)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["cost_approval.hold", "cost_approval.approve", "cost_approval.use"]


def test_refused_the_retry_is_refused(gateway: Any, approval_world: ApprovalWorld) -> None:
    text = "Summarise every client's year."
    approval_id = _held(gateway, approval_world.key, text)
    decided = _decide(gateway, approval_world, approval_id, "refuse", "too dear")
    assert decided.status_code == 200 and decided.json()["status"] == "refused"
    refused = _chat(gateway, approval_world.key, text, approval_id)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "approval_refused" and "too dear" in error["message"]
    event = ActivityEvent.objects.get(action="cost_approval.refuse", details__approval=approval_id)
    assert event.actor_label.startswith("admin key finance bot")


def test_the_most_specific_threshold_applies_and_an_unknown_id_is_refused(
    gateway: Any, approval_world: ApprovalWorld
) -> None:
    assert _chat(gateway, approval_world.roomy_key, "Same request, roomier key.").status_code == 200
    forged = _chat(gateway, approval_world.roomy_key, "hello", "apr_made-up")
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "approval_invalid"


def test_an_anthropic_client_gets_the_hold_in_its_own_format(
    gateway: Any, approval_world: ApprovalWorld
) -> None:
    response = httpx.post(
        gateway.url + "/v1/messages",
        headers={"x-api-key": approval_world.key, "anthropic-version": "2023-06-01"},
        json={
            "model": "quota-chat",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "A long essay, please."}],
        },
        timeout=10,
    )
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert response.headers["x-gateway-approval-id"] in body["error"]["message"]


def _approved(gateway: Any, world: ApprovalWorld, key: str, text: str) -> str:
    """A request held for approval, then approved: its approval id."""
    approval_id = _held(gateway, key, text)
    decided = _decide(gateway, world, approval_id, "approve", "reviewed")
    assert decided.status_code == 200, decided.text
    return approval_id


def test_an_approval_spent_on_a_request_a_limit_refused_is_given_back(
    gateway: Any, approval_world: ApprovalWorld, mock_server: Any
) -> None:
    """The approval is checked before the limits; a request it let through that a limit then
    refuses never reached a provider, so its approval stays good for the retry."""
    cheap = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {approval_world.limited_key}"},
        json={
            "model": "quota-chat",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}],
        },
        timeout=10,
    )
    assert cheap.status_code == 200, cheap.text  # under the threshold: the minute's one request
    text = "Price every option on the desk."
    approval_id = _approved(gateway, approval_world, approval_world.limited_key, text)
    before = len(mock_server.requests())

    limited = _chat(gateway, approval_world.limited_key, text, approval_id)

    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert len(mock_server.requests()) == before  # no provider saw it
    approval = CostApproval.objects.get(public_id=approval_id)
    assert approval.status == ApprovalStatus.APPROVED and approval.used_request_id == ""
    actions = list(
        ActivityEvent.objects.filter(details__approval=approval_id)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "cost_approval.hold",
        "cost_approval.approve",
        "cost_approval.use",
        "cost_approval.give_back",
    ]


def test_an_approval_spent_on_a_call_no_provider_answered_is_given_back(
    gateway: Any, approval_world: ApprovalWorld, mock_server: Any
) -> None:
    """The provider fails (500) and no other deployment answers: nothing was spent, so the
    approval is good for the retry, and the activity log says why it was given back."""
    text = "[mock status=500] Rebalance every portfolio on the desk."
    approval_id = _approved(gateway, approval_world, approval_world.key, text)
    before = len(mock_server.requests())

    failed = _chat(gateway, approval_world.key, text, approval_id)

    assert failed.status_code >= 500, failed.text
    assert len(mock_server.requests()) > before  # the provider was asked
    record = wait_for_record(failed.headers["x-request-id"])
    assert record.status == "upstream_error" and record.cost_usd == 0
    approval = CostApproval.objects.get(public_id=approval_id)
    assert approval.status == ApprovalStatus.APPROVED and approval.used_request_id == ""
    given_back = ActivityEvent.objects.get(
        action="cost_approval.give_back", details__approval=approval_id
    )
    assert given_back.details["request_id"] == failed.headers["x-request-id"]
    assert "no provider answered" in given_back.details["reason"]
    # The retry is let through by the same approval, to the (still failing) provider.
    again = _chat(gateway, approval_world.key, text, approval_id)
    assert again.status_code >= 500 and "approval_" not in again.text

"""The tenant's audit policy, legal holds and two-person erasure requests in the console."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from audit.activity.models import ActivityEvent
from audit.models import AuditErasure, AuditPolicy, AuditRecord, ErasureRequest, LegalHold
from tenants import services
from tests.console.conftest import PASSWORD, Acme

pytestmark = pytest.mark.django_db


def _client(acme: Acme, role: str) -> Client:
    client = Client()
    client.force_login(acme.users[role])
    return client


def _url(acme: Acme, page: str) -> str:
    return f"/console/t/{acme.tenant.slug}/compliance/{page}"


def _record(acme: Acme, end_user: str) -> AuditRecord:
    now = timezone.now()
    return AuditRecord.objects.create(
        request_id=f"req_{uuid.uuid4().hex[:24]}",
        tenant_id=acme.tenant.pk,
        team=acme.team,
        api_key=acme.key,
        endpoint="chat.completions",
        model_requested="demo",
        deployment_name="mock-gpt",
        provider_name="mock-ok",
        end_user=end_user,
        request_body={"messages": [{"role": "user", "content": "my IBAN is DE89 3704"}]},
        response_body={"choices": [{"message": {"role": "assistant", "content": "noted"}}]},
        status="success",
        http_status=200,
        cost_usd=Decimal("0.0001"),
        started_at=now,
        completed_at=now,
    )


@pytest.fixture
def second_officer(acme: Acme) -> Client:
    user = services.member_apply(
        tenant=acme.tenant,
        username="acme-compliance-2",
        email="c2@acme.example",
        role="compliance",
        teams=[],
        password=PASSWORD,
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "page", "status"),
    [
        ("developer", "policy/", 403),
        ("finance", "policy/", 403),
        ("tenant_admin", "policy/", 200),
        ("compliance", "policy/", 200),
        ("developer", "holds/", 403),
        ("tenant_admin", "holds/", 403),
        ("compliance", "holds/", 200),
        ("finance", "erasure/", 403),
        ("tenant_admin", "erasure/", 403),
        ("compliance", "erasure/", 200),
        ("outsider", "erasure/", 404),
    ],
)
def test_each_governance_page_is_scoped_by_role(
    acme: Acme, role: str, page: str, status: int
) -> None:
    assert _client(acme, role).get(_url(acme, page)).status_code == status


def test_a_tenant_admin_sets_the_audit_policy_and_it_is_logged(acme: Acme) -> None:
    admin = _client(acme, "tenant_admin")
    response = admin.post(_url(acme, "policy/"), {"content_mode": "masked", "retention_days": "90"})
    assert response.status_code == 302
    policy = AuditPolicy.objects.get(tenant=acme.tenant)
    assert (policy.content_mode, policy.retention_days) == ("masked", 90)
    assert ActivityEvent.objects.filter(
        action="audit.policy.set", actor_label="acme-tenant_admin", tenant_id=acme.tenant.pk
    ).exists()
    response = admin.post(_url(acme, "policy/"), {"content_mode": "bogus", "retention_days": "0"})
    assert response.status_code == 400
    assert AuditPolicy.objects.get(tenant=acme.tenant).content_mode == "masked"


def test_a_hold_is_placed_and_released(acme: Acme) -> None:
    officer = _client(acme, "compliance")
    response = officer.post(_url(acme, "holds/"), {"reason": "Matter 2026-17", "end_user": "u-1"})
    assert response.status_code == 302
    hold = LegalHold.objects.get(tenant=acme.tenant)
    assert "Matter 2026-17" in officer.get(_url(acme, "holds/")).content.decode()
    assert officer.post(_url(acme, f"holds/{hold.pk}/release/")).status_code == 302
    hold.refresh_from_db()
    assert hold.released_at is not None
    actions = set(ActivityEvent.objects.values_list("action", flat=True))
    assert {"audit.hold.place", "audit.hold.release"} <= actions


def test_a_hold_needs_a_reason_and_a_release_is_scoped_to_the_tenant(acme: Acme) -> None:
    officer = _client(acme, "compliance")
    assert officer.post(_url(acme, "holds/"), {"reason": ""}).status_code == 400
    assert not LegalHold.objects.exists()
    assert officer.post(_url(acme, "holds/999999/release/")).status_code == 404


def test_an_erasure_needs_a_second_person(acme: Acme, second_officer: Client) -> None:
    record = _record(acme, "client-erase-me")
    kept = _record(acme, "someone-else")
    officer = _client(acme, "compliance")
    response = officer.post(
        _url(acme, "erasure/"), {"end_user": "client-erase-me", "reason": "DSR-42"}
    )
    assert response.status_code == 302
    asked = ErasureRequest.objects.get(tenant=acme.tenant)
    page = officer.get(_url(acme, "erasure/")).content.decode()
    assert "Another person must decide" in page and "Approve and erase" not in page

    # The person who asked cannot approve it, even by posting directly.
    response = officer.post(_url(acme, f"erasure/{asked.pk}/approve/"))
    assert response.status_code == 409
    assert "second person" in response.content.decode()
    record.refresh_from_db()
    assert record.request_body is not None and not AuditErasure.objects.exists()

    # Another compliance officer can.
    assert "Approve and erase" in second_officer.get(_url(acme, "erasure/")).content.decode()
    approved = second_officer.post(_url(acme, f"erasure/{asked.pk}/approve/"), follow=True)
    assert approved.status_code == 200
    assert "Erased the content of 1 record of client-erase-me, and the copies" in (
        approved.content.decode()
    )
    asked.refresh_from_db()
    record.refresh_from_db()
    kept.refresh_from_db()
    assert asked.status == "approved" and asked.records_erased == 1
    assert asked.decided_by is not None and asked.decided_by.get_username() == "acme-compliance-2"
    assert record.request_body is None and kept.request_body is not None
    assert AuditErasure.objects.filter(record_id=record.pk).exists()
    actions = set(ActivityEvent.objects.values_list("action", flat=True))
    assert {"audit.erasure.request", "audit.erasure.approve", "audit.erase"} <= actions

    # A decided request is not decided again.
    assert second_officer.post(_url(acme, f"erasure/{asked.pk}/refuse/")).status_code == 409
    assert ErasureRequest.objects.get(pk=asked.pk).status == "approved"


def test_a_refused_erasure_erases_nothing(acme: Acme, second_officer: Client) -> None:
    record = _record(acme, "client-keep")
    officer = _client(acme, "compliance")
    officer.post(_url(acme, "erasure/"), {"end_user": "client-keep", "reason": "DSR-43"})
    asked = ErasureRequest.objects.get()
    assert second_officer.post(_url(acme, f"erasure/{asked.pk}/refuse/")).status_code == 302
    record.refresh_from_db()
    assert record.request_body is not None
    assert ErasureRequest.objects.get().status == "refused"


def test_a_held_end_user_is_not_erased_and_the_request_stays_pending(
    acme: Acme, second_officer: Client
) -> None:
    record = _record(acme, "client-held")
    officer = _client(acme, "compliance")
    officer.post(_url(acme, "holds/"), {"reason": "Litigation", "end_user": "client-held"})
    officer.post(_url(acme, "erasure/"), {"end_user": "client-held", "reason": "DSR-44"})
    asked = ErasureRequest.objects.get()
    response = second_officer.post(_url(acme, f"erasure/{asked.pk}/approve/"))
    assert response.status_code == 409 and "legal hold" in response.content.decode()
    record.refresh_from_db()
    assert record.request_body is not None and ErasureRequest.objects.get().status == "pending"

"""Erasure removes a payload and keeps the chain; retention purges only expired, unheld records."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit import services
from audit.activity.models import ActivityEvent
from audit.activity.services import SYSTEM
from audit.content import ContentModes, apply_content_mode
from audit.entries import AuditEntry
from audit.models import AuditCheckpoint, AuditErasure, AuditRecord, ContentMode
from audit.sealer import audit_seal_pending
from audit.sql import insert_entries
from audit.verify import audit_chain_verify
from tenants.models import ApiKey

pytestmark = [pytest.mark.django_db]


def test_an_erasure_leaves_a_tombstone_and_the_chain_still_verifies(make_record, world):
    mine = [
        make_record(end_user="client-erase-me", prompt="my IBAN is DE89 3704") for _ in range(2)
    ]
    other = make_record(end_user="advisor-17")

    erased = services.audit_records_erase(
        tenant=world.team.tenant, end_user="client-erase-me", reason="GDPR request 42", actor=SYSTEM
    )

    assert erased == 2
    for record in mine:
        record.refresh_from_db()
        assert record.request_body is None and record.response_body is None
        assert AuditErasure.objects.get(record_id=record.pk).reason == "GDPR request 42"
        assert record.end_user == "client-erase-me"  # who and when stay: only the content goes
    other.refresh_from_db()
    assert other.request_body is not None
    report = audit_chain_verify(tenant_id=world.team.tenant_id)
    assert report.ok, report.breaks
    assert report.erased >= 2


def test_an_erasure_cannot_be_faked_to_rewrite_content(make_record):
    record = make_record()
    audit_seal_pending()

    refused = pytest.raises(DatabaseError, match="only remove the payload")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('audit.erase', 'on', true)")
        cursor.execute(
            "UPDATE audit_auditrecord SET request_body = NULL, response_body = NULL, "
            "tool_calls = '[]', tool_results = '[]', cost_usd = 0 WHERE id = %s",
            [record.pk],
        )


def test_an_erasure_also_erases_the_stored_responses_and_conversation_turns_of_those_requests(
    make_record, world
):
    from routing.responses_state.models import Conversation, ConversationItem, StoredResponse

    now, tenant = timezone.now(), world.team.tenant
    mine = make_record(end_user="erase-me", prompt="my IBAN is DE89 3704")
    other = make_record(end_user="someone-else")
    kept = {"created_at": now, "expires_at": now + timedelta(days=30), "content_mode": "full"}
    for record in (mine, other):
        StoredResponse.objects.create(
            response_id="resp_" + record.request_id.removeprefix("req_"),
            tenant=tenant,
            api_key_id=record.api_key_id,
            request_id=record.request_id,
            model="mock-gpt",
            input_items=[{"role": "user", "content": "my IBAN is DE89 3704"}],
            response={"output": []},
            **kept,
        )
    thread = Conversation.objects.create(
        conversation_id=f"conv_{uuid.uuid4().hex}",
        tenant=tenant,
        api_key_id=mine.api_key_id,
        **kept,
    )
    for n, record in enumerate((mine, other)):
        ConversationItem.objects.create(
            conversation=thread,
            item_id=f"msg_{n}",
            item={"content": "DE89 3704"},
            response_id="resp_" + record.request_id.removeprefix("req_"),
            created_at=now,
        )

    services.audit_records_erase(tenant=tenant, end_user="erase-me", reason="GDPR", actor=SYSTEM)

    assert list(
        StoredResponse.objects.values_list("request_id", flat=True).filter(
            request_id__in=[mine.request_id, other.request_id]
        )
    ) == [other.request_id]
    assert list(thread.items.values_list("item_id", flat=True)) == ["msg_1"]
    event = ActivityEvent.objects.filter(action="audit.erase", tenant=tenant).latest("id")
    assert event.details["copies"] == 2


def test_records_under_legal_hold_are_not_erased(make_record, world):
    make_record(end_user="client-held")
    services.legal_hold_place(
        tenant=world.team.tenant, end_user="client-held", reason="matter 7", actor=SYSTEM
    )

    with pytest.raises(services.AuditError, match="legal hold"):
        services.audit_records_erase(
            tenant=world.team.tenant, end_user="client-held", reason="GDPR", actor=SYSTEM
        )


def test_retention_purges_only_expired_unheld_records_and_checkpoints_them(make_record, world):
    now = timezone.now()
    tenant = world.team.tenant
    services.audit_policy_set(
        tenant=tenant, content_mode=ContentMode.FULL, retention_days=30, actor=SYSTEM
    )
    expired = make_record(started_at=now - timedelta(days=40), end_user="someone")
    held_user = make_record(started_at=now - timedelta(days=40), end_user="client-in-dispute")
    held_range = make_record(started_at=now - timedelta(days=100), end_user="someone")
    recent = make_record(started_at=now - timedelta(days=10))
    services.legal_hold_place(
        tenant=tenant, end_user="client-in-dispute", reason="litigation", actor=SYSTEM
    )
    services.legal_hold_place(
        tenant=tenant,
        starts_at=now - timedelta(days=101),
        ends_at=now - timedelta(days=99),
        reason="regulator inquiry",
        actor=SYSTEM,
    )

    checkpoints = services.audit_retention_purge(now=now)

    remaining = set(AuditRecord.objects.values_list("id", flat=True))
    assert expired.pk not in remaining
    assert {held_user.pk, held_range.pk, recent.pk} <= remaining
    purge = next(c for c in checkpoints if c.tenant_id == tenant.pk)
    assert purge.count >= 1 and purge.purged_ranges
    report = audit_chain_verify(tenant_id=tenant.pk)
    assert report.ok, report.breaks
    assert report.purged >= 1


def test_a_hold_on_the_whole_tenant_stops_every_purge(make_record, world):
    now = timezone.now()
    tenant = world.team.tenant
    services.audit_policy_set(tenant=tenant, content_mode="full", retention_days=1, actor=SYSTEM)
    old = make_record(started_at=now - timedelta(days=5))
    services.legal_hold_place(tenant=tenant, reason="all records: audit", actor=SYSTEM)

    services.audit_retention_purge(now=now)

    assert AuditRecord.objects.filter(pk=old.pk).exists()
    assert not AuditCheckpoint.objects.filter(tenant=tenant, kind="purge").exists()


def test_a_hold_placed_after_retention_chose_its_batch_still_stops_the_delete(
    make_record, world, monkeypatch
):
    now = timezone.now()
    tenant = world.team.tenant
    services.audit_policy_set(tenant=tenant, content_mode="full", retention_days=30, actor=SYSTEM)
    disputed = [
        make_record(started_at=now - timedelta(days=40), end_user="client-in-dispute")
        for _ in range(3)
    ]
    expired = make_record(started_at=now - timedelta(days=40), end_user="someone")
    real_purge = services._purge

    def hold_lands_first(tenant_id, rows, when, actor):  # what two transactions allow
        if tenant_id == tenant.pk:
            services.legal_hold_place(
                tenant=tenant, end_user="client-in-dispute", reason="litigation", actor=SYSTEM
            )
        return real_purge(tenant_id, rows, when, actor)

    monkeypatch.setattr(services, "_purge", hold_lands_first)
    checkpoints = services.audit_retention_purge(now=now)

    remaining = set(AuditRecord.objects.values_list("id", flat=True))
    assert {r.pk for r in disputed} <= remaining
    assert expired.pk not in remaining
    purge = next(c for c in checkpoints if c.tenant_id == tenant.pk)
    assert purge.count == 1  # the checkpoint names what went, not what was chosen


def _write_as_the_writer_does(entry: AuditEntry) -> AuditRecord:
    # The writer's steps, on the test's connection (write_batch closes its thread's connection).
    mode = ContentModes().modes([entry.tenant_id])[entry.tenant_id]
    insert_entries(connection, [apply_content_mode(entry, mode)])
    return AuditRecord.objects.get(request_id=entry.request_id)


def _entry(world, **fields) -> AuditEntry:
    key = ApiKey.objects.filter(team=world.team).first()
    return AuditEntry(
        request_id=f"req_mode_{timezone.now().timestamp()}",
        tenant_id=world.team.tenant_id,
        team_id=world.team.pk,
        api_key_id=key.pk,
        endpoint="chat.completions",
        started_at=timezone.now(),
        status="success",
        request_body={
            "messages": [{"role": "user", "content": "Mail jane@example.com or +44 20 7946 0958"}]
        },
        response_body={"choices": [{"message": {"content": "Done, jane@example.com."}}]},
        **fields,
    )


def test_masked_mode_stores_no_email_or_phone_number(world):
    services.audit_policy_set(
        tenant=world.team.tenant, content_mode=ContentMode.MASKED, retention_days=None, actor=SYSTEM
    )
    entry = _entry(world)

    stored = _write_as_the_writer_does(entry)
    text = str(stored.request_body) + str(stored.response_body)
    assert "jane@example.com" not in text and "7946" not in text
    assert "[email]" in text and "[number]" in text


def test_metadata_mode_stores_only_hashes_of_the_content(world):
    services.audit_policy_set(
        tenant=world.team.tenant,
        content_mode=ContentMode.METADATA,
        retention_days=None,
        actor=SYSTEM,
    )
    entry = _entry(world)

    stored = _write_as_the_writer_does(entry)
    assert set(stored.request_body) == {"content_mode", "sha256"}
    assert "jane" not in str(stored.response_body)
    assert stored.end_user == entry.end_user and stored.status == "success"


def test_a_purge_or_an_erasure_holding_its_tenant_never_stalls_the_tenants_calls(world):
    """While retention or an erasure holds a tenant's hold lock, its calls are still recorded:
    a record's foreign key needs a key-share lock on the tenant, which the hold lock leaves free.
    """
    import psycopg

    from audit.selectors import holds_locked
    from tests.support.live import test_database_url

    tenant_id = world.team.tenant_id
    with transaction.atomic():
        holds_locked(tenant_id)  # as a purge does, for as long as it deletes
        with psycopg.connect(test_database_url(), autocommit=True) as other:
            other.execute("SET lock_timeout = '1s'")
            found = other.execute(
                "SELECT id FROM tenants_tenant WHERE id = %s FOR KEY SHARE", [tenant_id]
            ).fetchone()
    assert found == (tenant_id,)

"""Each tenant's records form a hash chain; verification names the first link that breaks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from audit import chain
from audit.models import AuditCheckpoint, AuditRecord, AuditSeal
from audit.sealer import audit_checkpoint_heads, audit_seal_pending
from audit.verify import audit_chain_verify

pytestmark = [pytest.mark.django_db]


def _as_superuser_without_triggers(sql: str, params: list[object]) -> None:
    """What an attacker with database superuser rights can do: bypass the triggers."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_every_record_field_is_covered_by_the_canonical_form():
    columns = {f.attname for f in AuditRecord._meta.concrete_fields}

    assert columns == set(chain.RECORD_COLUMNS), (
        "a new AuditRecord column needs a new canonical form version in audit/chain.py"
    )


def test_a_seal_made_with_an_older_canonical_form_still_verifies(make_record):
    record = make_record(prompt="sealed before routing was recorded")
    audit_seal_pending()
    seal = AuditSeal.objects.get(record_id=record.pk)
    row = AuditRecord.objects.filter(pk=record.pk).values(*chain.RECORD_COLUMNS).get()
    # As a version 1 seal was made: without the routing column in the content hash.
    v1_hash = chain.content_hash(row, seal.payload_hash, version=1)
    assert v1_hash != seal.content_hash  # the forms really differ
    _as_superuser_without_triggers(
        "UPDATE audit_auditseal SET version = 1, content_hash = %s WHERE id = %s",
        [v1_hash, seal.pk],
    )
    _as_superuser_without_triggers(
        "UPDATE audit_auditseal SET hash = %s WHERE id = %s",
        [chain.link_hash(seal.prev_hash, seal.seq, v1_hash), seal.pk],
    )
    # Seals after it link to its old hash: re-link the rest of the chain as it was sealed then.
    later = AuditSeal.objects.filter(tenant_id=seal.tenant_id, seq__gt=seal.seq).order_by("seq")
    prev = chain.link_hash(seal.prev_hash, seal.seq, v1_hash)
    for after in later:
        linked = chain.link_hash(prev, after.seq, after.content_hash)
        _as_superuser_without_triggers(
            "UPDATE audit_auditseal SET prev_hash = %s, hash = %s WHERE id = %s",
            [prev, linked, after.pk],
        )
        prev = linked
    # The sealer moved the chain head to the last link it wrote, so the head ends there too.
    _as_superuser_without_triggers(
        "UPDATE audit_auditchainhead SET hash = %s WHERE tenant_id = %s", [prev, seal.tenant_id]
    )

    report = audit_chain_verify(tenant_id=record.tenant_id)

    assert not [b for b in report.breaks if b.record_id == record.pk], report.breaks


def test_the_routing_reason_is_covered_by_the_chain(make_record):
    record = make_record(routing={"strategy": "ordered", "reason": "ordered: mock-gpt first"})
    audit_seal_pending()

    _as_superuser_without_triggers(
        "UPDATE audit_auditrecord SET routing = %s WHERE id = %s",
        ['{"strategy": "ordered", "reason": "rewritten"}', record.pk],
    )
    report = audit_chain_verify(tenant_id=record.tenant_id)

    assert any(b.record_id == record.pk for b in report.breaks)


def test_a_sealed_chain_verifies(make_record):
    records = [make_record(prompt=f"question {n}") for n in range(3)]

    audit_seal_pending()
    report = audit_chain_verify(tenant_id=records[0].tenant_id)

    assert report.ok, report.breaks
    assert report.checked >= 3
    seals = AuditSeal.objects.filter(record_id__in=[r.pk for r in records]).order_by("seq")
    assert [s.seq for s in seals] == sorted(s.seq for s in seals)
    assert seals[1].prev_hash == seals[0].hash


def test_a_record_altered_with_triggers_disabled_is_named(make_record):
    _, victim, _ = (make_record(prompt=f"question {n}") for n in range(3))
    audit_seal_pending()

    _as_superuser_without_triggers(
        "UPDATE audit_auditrecord SET cost_usd = 0 WHERE id = %s", [victim.pk]
    )
    report = audit_chain_verify(tenant_id=victim.tenant_id)

    assert not report.ok
    broken = report.first_break
    assert broken is not None
    assert (broken.record_id, broken.request_id) == (victim.pk, victim.request_id)
    assert "content was altered" in broken.reason
    assert victim.request_id in broken.describe()


def test_an_altered_answer_is_caught(make_record):
    victim = make_record()
    audit_seal_pending()

    _as_superuser_without_triggers(
        "UPDATE audit_auditrecord SET response_body = '{\"choices\": []}'::jsonb WHERE id = %s",
        [victim.pk],
    )
    report = audit_chain_verify(tenant_id=victim.tenant_id)

    assert report.first_break is not None
    assert report.first_break.record_id == victim.pk
    assert "payload" in report.first_break.reason


def test_a_deleted_record_is_caught(make_record):
    victim = make_record()
    make_record()
    audit_seal_pending()

    _as_superuser_without_triggers("DELETE FROM audit_auditrecord WHERE id = %s", [victim.pk])
    report = audit_chain_verify(tenant_id=victim.tenant_id)

    assert report.first_break is not None
    assert report.first_break.record_id == victim.pk
    assert "missing" in report.first_break.reason


def test_truncating_the_end_of_the_chain_is_caught_by_the_signed_checkpoint(make_record):
    make_record()
    victim = make_record()
    audit_seal_pending()
    audit_checkpoint_heads(min_interval=timedelta(0))
    seal = AuditSeal.objects.get(record_id=victim.pk)

    _as_superuser_without_triggers("DELETE FROM audit_auditseal WHERE id = %s", [seal.pk])
    _as_superuser_without_triggers("DELETE FROM audit_auditrecord WHERE id = %s", [victim.pk])
    report = audit_chain_verify(tenant_id=victim.tenant_id)

    assert not report.ok
    assert any("truncated" in b.reason or "missing" in b.reason for b in report.breaks)


def test_a_forged_checkpoint_is_caught(make_record):
    record = make_record()
    audit_seal_pending()
    # Other tenants' heads may move too (records other tests left): take this tenant's.
    (checkpoint,) = [
        c
        for c in audit_checkpoint_heads(min_interval=timedelta(0))
        if c.tenant_id == record.tenant_id
    ]

    _as_superuser_without_triggers(
        "UPDATE audit_auditcheckpoint SET count = count + 1 WHERE id = %s", [checkpoint.pk]
    )
    report = audit_chain_verify(tenant_id=record.tenant_id)

    assert any("bad signature" in b.reason for b in report.breaks)
    assert AuditCheckpoint.objects.filter(pk=checkpoint.pk).exists()


def test_an_unfinished_stream_waits_and_is_sealed_once_complete(make_record):
    stream = make_record(status="in_progress", completed_at=None)

    audit_seal_pending()
    assert not AuditSeal.objects.filter(record_id=stream.pk).exists()

    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditrecord SET status = 'success' WHERE id = %s", [stream.pk])
    audit_seal_pending()

    assert AuditSeal.objects.filter(record_id=stream.pk).exists()
    assert audit_chain_verify(tenant_id=stream.tenant_id).ok


def test_an_edit_made_with_the_trigger_disabled_is_named_by_verification(make_record):
    victim = make_record(end_user="advisor-honest")
    audit_seal_pending()

    with connection.cursor() as cursor:  # DDL is transactional: the test's rollback restores it
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # settle the insert's deferred checks
        cursor.execute("ALTER TABLE audit_auditrecord DISABLE TRIGGER audit_record_append_only")
        cursor.execute(
            "UPDATE audit_auditrecord SET end_user = 'advisor-framed' WHERE id = %s", [victim.pk]
        )
        cursor.execute("ALTER TABLE audit_auditrecord ENABLE TRIGGER audit_record_append_only")
    report = audit_chain_verify(tenant_id=victim.tenant_id)

    assert report.first_break is not None
    assert report.first_break.request_id == victim.request_id
    assert "content was altered" in report.first_break.reason


def test_a_number_jsonb_reads_back_beyond_64_bits_still_hashes_the_same_way_twice():
    from audit.chain import canonical

    row = {"request_body": {"messages": [{"x": 61821797141234570000000000000000}]}}

    assert canonical(row) == canonical(row)
    assert b'"61821797141234570000000000000000"' in canonical(row)

"""On PostgreSQL the audit table is append-only: only a stream's one completion may change a row."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditRecord, AuditSeal
from audit.sealer import audit_seal_pending

pytestmark = [pytest.mark.django_db]


def _refused(sql: str, params: list[object]) -> str:
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
    return str(caught.value)


def test_a_direct_sql_update_of_a_finished_record_is_refused(make_record):
    record = make_record()

    message = _refused(
        "UPDATE audit_auditrecord SET response_body = '{}'::jsonb WHERE id = %s", [record.pk]
    )

    assert "append-only" in message
    record.refresh_from_db()
    assert record.response_body["choices"][0]["message"]["content"] == "60% equities, 40% bonds."


def test_a_direct_sql_delete_is_refused(make_record):
    record = make_record()

    assert "append-only" in _refused("DELETE FROM audit_auditrecord WHERE id = %s", [record.pk])
    assert AuditRecord.objects.filter(pk=record.pk).exists()


def test_truncate_is_refused():
    assert "append-only" in _refused("TRUNCATE audit_auditrecord", [])
    assert "append-only" in _refused("TRUNCATE audit_auditseal", [])


def test_an_unfinished_stream_is_completed_once_and_only_its_outcome_changes(make_record):
    record = make_record(status="in_progress", response_body=None, completed_at=None)

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditrecord SET status = 'success', completion_tokens = 40 "
            "WHERE id = %s AND status = 'in_progress'",
            [record.pk],
        )
    message = _refused(
        "UPDATE audit_auditrecord SET completion_tokens = 1 WHERE id = %s", [record.pk]
    )

    assert "append-only" in message
    record.refresh_from_db()
    assert (record.status, record.completion_tokens) == ("success", 40)


def test_a_completion_cannot_rewrite_who_asked(make_record):
    record = make_record(status="in_progress", completed_at=None)

    message = _refused(
        "UPDATE audit_auditrecord SET status = 'success', end_user = 'someone-else' WHERE id = %s",
        [record.pk],
    )

    assert "append-only" in message


def test_seals_cannot_be_changed_or_deleted(make_record):
    make_record()
    audit_seal_pending()
    seal = AuditSeal.objects.order_by("-id").first()
    assert seal is not None

    assert "append-only" in _refused(
        "UPDATE audit_auditseal SET hash = 'x' WHERE id = %s", [seal.pk]
    )
    assert "append-only" in _refused("DELETE FROM audit_auditseal WHERE id = %s", [seal.pk])

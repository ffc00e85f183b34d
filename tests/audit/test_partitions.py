"""Monthly partitions of the audit table (PostgreSQL): created late or ahead, dropped whole by
retention when sealed and past retention (a legal hold keeps them), archived to a folder and
verified from the archive alone, re-attached read-only. The S3 path: tests/drills/test_audit_years.py."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.activity.services import SYSTEM
from audit.archive import archive_verify, audit_month_archive, audit_month_attach
from audit.models import AuditMonth, AuditRecord, CheckpointKind, MonthState
from audit.partitions import (
    audit_partitions_ensure,
    month_verdict,
    partition_create,
    partitioned,
)
from audit.sealer import audit_seal_pending
from audit.services import audit_retention_purge, legal_hold_place
from audit.verify import audit_chain_verify
from tests.audit.conftest import MakeRecord

pytestmark = [pytest.mark.django_db]

MONTH = date(2003, 5, 1)
IN_MONTH = datetime(2003, 5, 14, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if not partitioned():
        pytest.skip("the audit table is partitioned on PostgreSQL only")


def _table_of(record: AuditRecord) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM audit_auditrecord WHERE id = %s", [record.pk]
        )
        return str(cursor.fetchone()[0])


def _sealed_month(make_record: MakeRecord, count: int = 3, **fields: Any) -> list[AuditRecord]:
    records = [make_record(started_at=IN_MONTH.replace(day=10 + n), **fields) for n in range(count)]
    partition_create(MONTH)
    audit_seal_pending()
    return records


def test_this_month_and_the_next_ones_exist(world: Any) -> None:
    audit_partitions_ensure(ahead=2)
    today = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"audit_auditrecord_p{today:%Y%m}"])
        assert cursor.fetchone()[0] is not None
    assert AuditMonth.objects.filter(month=date(today.year, today.month, 1)).exists()


def test_a_month_created_late_takes_its_records_from_the_default_partition(
    make_record: MakeRecord,
) -> None:
    record = make_record(started_at=IN_MONTH)
    assert _table_of(record) == "audit_auditrecord_default"
    audit_seal_pending()

    assert partition_create(MONTH)

    assert _table_of(record) == "audit_auditrecord_p200305"
    assert audit_chain_verify(tenant_id=record.tenant_id).ok


def test_a_partition_refuses_update_delete_and_truncate(make_record: MakeRecord) -> None:
    (record,) = _sealed_month(make_record, count=1)
    for statement in (
        "UPDATE audit_auditrecord_p200305 SET end_user = 'x' WHERE id = %s",
        "DELETE FROM audit_auditrecord_p200305 WHERE id = %s",
        "TRUNCATE audit_auditrecord_p200305",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [record.pk] if "%s" in statement else None)


def test_retention_drops_a_sealed_month_past_retention_and_the_chain_verifies(
    make_record: MakeRecord,
) -> None:
    records = _sealed_month(make_record)

    checkpoints = audit_retention_purge(now=datetime.now(UTC))

    month = AuditMonth.objects.get(month=MONTH)
    assert month.state == MonthState.DROPPED
    assert not AuditRecord.objects.filter(pk__in=[r.pk for r in records]).exists()
    dropped = [c for c in checkpoints if c.details.get("month") == "2003-05"]
    assert dropped and dropped[0].kind == CheckpointKind.PURGE
    assert dropped[0].count == len(records)
    report = audit_chain_verify(tenant_id=records[0].tenant_id)
    assert report.ok, [b.describe() for b in report.breaks]
    assert report.purged >= len(records)


def test_a_legal_hold_keeps_the_whole_month(make_record: MakeRecord, world: Any) -> None:
    records = _sealed_month(make_record, end_user="client-7")
    legal_hold_place(tenant=world.team.tenant, reason="matter 7", actor=SYSTEM, end_user="client-7")

    audit_retention_purge(now=datetime.now(UTC))

    month = AuditMonth.objects.get(month=MONTH)
    assert month.state == MonthState.SEALED
    assert "legal hold" in month_verdict(month, datetime.now(UTC)).reason
    assert AuditRecord.objects.filter(pk__in=[r.pk for r in records]).count() == len(records)


def test_an_archived_month_verifies_offline_names_an_altered_byte_and_comes_back_read_only(
    make_record: MakeRecord, tmp_path: Path
) -> None:
    records = _sealed_month(make_record, count=4)
    audit_retention_purge(now=datetime(2003, 6, 3, tzinfo=UTC))  # seals the month, keeps it
    month = AuditMonth.objects.get(month=MONTH)
    assert month.state == MonthState.SEALED

    result = audit_month_archive(month=month, destination=str(tmp_path))
    assert result.url == str(tmp_path / "2003-05")
    assert archive_verify(result.url).ok
    names = sorted(p.name for p in (tmp_path / "2003-05").iterdir())
    assert names == sorted(
        ["manifest.json", "records.jsonl", "seals.jsonl", "checkpoints.jsonl", "erasures.jsonl"]
    )

    path = tmp_path / "2003-05" / "records.jsonl"
    original = path.read_bytes()
    third = original.split(b"\n")[2]
    path.write_bytes(
        original.replace(third, third.replace(b'"prompt_tokens":12', b'"prompt_tokens":13'))
    )
    printed = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_verify", archive=result.url, stdout=printed)
    assert (
        f"records.jsonl line 3 (record {records[2].pk}, request {records[2].request_id}): the "
        "record's content differs from its seal"
    ) in printed.getvalue()
    path.write_bytes(original)

    audit_retention_purge(now=datetime.now(UTC))
    assert AuditMonth.objects.get(month=MONTH).state == MonthState.DROPPED
    audit_month_attach(url=result.url)
    back = AuditRecord.objects.get(pk=records[2].pk)
    assert back.request_id == records[2].request_id
    assert audit_chain_verify(tenant_id=back.tenant_id).ok
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.create(
            **{
                f.attname: getattr(back, f.attname)
                for f in AuditRecord._meta.concrete_fields
                if not f.primary_key and f.attname != "request_id"
            },
            request_id="req_late_into_an_archived_month",
        )

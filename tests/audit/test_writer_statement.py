"""The writer's one statement: a record and its ledger row are written together, or neither."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.entries import AuditEntry
from audit.models import AuditRecord, AuditStatus
from audit.sql import insert_entries_with
from quotas.ledger import spend_rows
from quotas.models import SpendEntry
from tenants.models import ApiKey

pytestmark = [pytest.mark.django_db]


def _entry(world, request_id: str, cost: str) -> AuditEntry:
    key = ApiKey.objects.filter(team=world.team).first()
    return AuditEntry(
        request_id=request_id,
        tenant_id=world.team.tenant_id,
        team_id=world.team.pk,
        api_key_id=key.pk,
        endpoint="chat.completions",
        started_at=timezone.now(),
        status=AuditStatus.SUCCESS,
        cost_usd=Decimal(cost),
    )


def _write(entries: list[AuditEntry]) -> None:
    insert_entries_with(connection, entries, spend_rows(connection, entries))


def test_records_and_their_charges_land_together(world) -> None:
    first, second = (f"req_{uuid.uuid4().hex}" for _ in range(2))

    _write([_entry(world, first, "0.25"), _entry(world, second, "0")])

    assert AuditRecord.objects.filter(request_id__in=[first, second]).count() == 2
    # Only what costs something is charged.
    assert list(
        SpendEntry.objects.filter(request_id__in=[first, second]).values_list(
            "request_id", "amount_usd"
        )
    ) == [(first, Decimal("0.25"))]


def test_a_record_that_cannot_be_written_leaves_no_charge_behind(world) -> None:
    taken, fresh = f"req_{uuid.uuid4().hex}", f"req_{uuid.uuid4().hex}"
    _write([_entry(world, taken, "0.10")])

    with pytest.raises(IntegrityError), transaction.atomic():
        _write([_entry(world, fresh, "0.40"), _entry(world, taken, "0.10")])

    assert not AuditRecord.objects.filter(request_id=fresh).exists()
    assert not SpendEntry.objects.filter(request_id=fresh).exists()
    assert SpendEntry.objects.filter(request_id=taken).count() == 1

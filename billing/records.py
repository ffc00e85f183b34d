"""Audit records of a time window: the one way the periodic jobs (rollups, alerts, digests) read
them, served by the audit table's time index (`audit_time`)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from audit.models import AuditCheckpoint, AuditRecord, AuditSeal, AuditStatus, CheckpointKind


def records_between(start: datetime, end: datetime) -> QuerySet[AuditRecord]:
    return AuditRecord.objects.filter(started_at__gte=start, started_at__lt=end)


def first_record_at() -> datetime | None:
    """When the oldest record started."""
    return AuditRecord.objects.order_by("started_at").values_list("started_at", flat=True).first()


def purged_tenants(before: datetime) -> set[int]:
    """Tenants whose records started before `before` retention has begun to delete (a purge's
    checkpoint says up to when): their rollups of such a time are kept as rolled, never rebuilt
    from what retention left."""
    return set(
        AuditCheckpoint.objects.filter(
            kind=CheckpointKind.PURGE, details__cutoff_epoch__gt=int(before.timestamp())
        ).values_list("tenant_id", flat=True)
    )


def latest_record_id() -> int:
    return AuditRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0


def late_record_times(after_id: int, before: datetime) -> list[datetime]:
    """When the records written since record `after_id` but started before `before` started:
    a call recorded late (a worker's journal recovered after downtime) lands in a window that
    was already rolled up."""
    return list(
        AuditRecord.objects.filter(id__gt=after_id, started_at__lt=before)
        .values_list("started_at", flat=True)
        .order_by()
    )


def open_record_ids() -> list[int]:
    """The records that may still be completed: in progress, and not sealed so (a stream the
    sealer chained as abandoned is never completed)."""
    sealed = AuditSeal.objects.filter(record_id=OuterRef("id"))
    return list(
        AuditRecord.objects.filter(status=AuditStatus.IN_PROGRESS)
        .exclude(Exists(sealed))
        .values_list("id", flat=True)
    )


def record_times(ids: list[int]) -> list[datetime]:
    """When these records started."""
    return list(AuditRecord.objects.filter(id__in=ids).values_list("started_at", flat=True))

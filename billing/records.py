"""Audit records of a time window: the one way the periodic jobs (rollups, alerts, digests) read
them, served by the audit table's time index (`audit_time`)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from audit.models import AuditRecord


def records_between(start: datetime, end: datetime) -> QuerySet[AuditRecord]:
    return AuditRecord.objects.filter(started_at__gte=start, started_at__lt=end)


def first_record_at() -> datetime | None:
    """When the oldest record started."""
    return AuditRecord.objects.order_by("started_at").values_list("started_at", flat=True).first()

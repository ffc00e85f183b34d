"""Audit records of a time window, asked for in the shape their index serves.

The audit table is indexed by (tenant, started_at), not by time alone. Naming every tenant lets
PostgreSQL walk one index range per tenant instead of scanning the whole table, which matters for
the periodic jobs (rollups, alerts, digests) that read a few minutes or hours of a large table.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from audit.models import AuditRecord
from tenants.models import Tenant


def tenant_ids() -> list[int]:
    return list(Tenant.objects.values_list("id", flat=True))


def records_between(start: datetime, end: datetime) -> QuerySet[AuditRecord]:
    return AuditRecord.objects.filter(
        tenant_id__in=tenant_ids(), started_at__gte=start, started_at__lt=end
    )


def first_record_at() -> datetime | None:
    """When the oldest record started (one short index walk per tenant)."""
    firsts = [
        AuditRecord.objects.filter(tenant_id=tenant)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
        for tenant in tenant_ids()
    ]
    return min((moment for moment in firsts if moment is not None), default=None)

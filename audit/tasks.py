"""Periodic audit jobs (Celery beat, see CELERY_BEAT_SCHEDULE); each calls one service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from audit.partitions import audit_months_seal, audit_partitions_ensure
from audit.sealer import audit_checkpoint_heads, audit_seal_pending
from audit.services import audit_retention_purge


@shared_task(name="audit.seal", ignore_result=True)  # type: ignore[untyped-decorator]
def seal() -> int:
    sealed = audit_seal_pending()
    audit_checkpoint_heads(min_interval=timedelta(minutes=settings.AUDIT_CHECKPOINT_MINUTES))
    return sealed


@shared_task(name="audit.retention", ignore_result=True)  # type: ignore[untyped-decorator]
def retention() -> int:
    return len(audit_retention_purge())


@shared_task(name="audit.partitions", ignore_result=True)  # type: ignore[untyped-decorator]
def partitions() -> int:
    """Months ahead created, finished months sealed (PostgreSQL; nothing on SQLite)."""
    created = audit_partitions_ensure()
    audit_months_seal()
    return len(created)

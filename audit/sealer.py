"""The sealer: links finished records into their tenant's hash chain, and signs checkpoints.

It runs off the hot path (a Celery beat task, and before every verification or export), so the
proxy's one-statement insert stays as it is. One sealer runs at a time (an advisory lock on
PostgreSQL; SQLite's write transactions are serial anyway).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef, Q
from django.utils import timezone

from audit import chain
from audit.models import (
    AuditChainHead,
    AuditCheckpoint,
    AuditRecord,
    AuditSeal,
    AuditStatus,
    CheckpointKind,
    SealerState,
)

_LOCK_KEY = 0x6175646974  # "audit"
# A writer's transaction is short; a record whose id is below a computed watermark has surely
# committed (or failed) this long after.
_WATERMARK_LAG = timedelta(seconds=60)


def audit_seal_pending(*, batch_size: int = 2000, limit: int = 200_000) -> int:
    """Chain every finished record not yet sealed; returns how many were sealed."""
    sealed, after = 0, 0
    while sealed < limit:
        # Within one run, each batch starts after the last: rescanning from the watermark would
        # make a large backlog quadratic. Anything skipped is picked up by the next run.
        count, after = _seal_batch(batch_size, after)
        sealed += count
        if count < batch_size:
            break
    return sealed


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _unsealed(low_watermark: int, now: datetime) -> Any:
    # A stream still running is not sealed yet, unless it has been running so long that its
    # worker surely died (it would stay out of the chain forever otherwise).
    abandoned = now - timedelta(seconds=settings.AUDIT_ABANDONED_STREAM_SECONDS)
    return (
        AuditRecord.objects.filter(id__gt=low_watermark)
        .filter(~Q(status=AuditStatus.IN_PROGRESS) | Q(started_at__lt=abandoned))
        .filter(~Exists(AuditSeal.objects.filter(record_id=OuterRef("id"))))
    )


def _seal_batch(batch_size: int, after: int) -> tuple[int, int]:
    now = timezone.now()
    with transaction.atomic():
        _lock()
        state, _ = SealerState.objects.select_for_update().get_or_create(pk=1)
        rows = list(
            _unsealed(max(state.low_watermark, after), now)
            .order_by("id")
            .values(*chain.RECORD_COLUMNS)[:batch_size]
        )
        if rows:
            _link(rows, now)
        _advance_watermark(state, rows, batch_size, now)
    return len(rows), (rows[-1]["id"] if rows else after)


def _link(rows: list[dict[str, Any]], now: datetime) -> None:
    tenant_ids = {row["tenant_id"] for row in rows}
    heads = {
        head.tenant_id: head
        for head in AuditChainHead.objects.select_for_update().filter(tenant_id__in=tenant_ids)
    }
    seals = []
    for row in rows:
        head = heads.get(row["tenant_id"])
        if head is None:
            head = heads[row["tenant_id"]] = AuditChainHead(
                tenant_id=row["tenant_id"], seq=0, hash=chain.GENESIS
            )
        payload = chain.payload_hash(row)
        content = chain.content_hash(row, payload)
        seq = head.seq + 1
        link = chain.link_hash(head.hash, seq, content)
        seals.append(
            AuditSeal(
                tenant_id=row["tenant_id"],
                seq=seq,
                record_id=row["id"],
                version=chain.CANONICAL_VERSION,
                payload_hash=payload,
                content_hash=content,
                prev_hash=head.hash,
                hash=link,
                sealed_at=now,
            )
        )
        head.seq, head.hash = seq, link
    AuditSeal.objects.bulk_create(seals)
    for head in heads.values():
        head.save()


def _advance_watermark(
    state: SealerState, rows: list[dict[str, Any]], batch_size: int, now: datetime
) -> None:
    if state.next_at is not None and now - state.next_at >= _WATERMARK_LAG:
        state.low_watermark = max(state.low_watermark, state.next_watermark)
        state.next_at = None
    if state.next_at is None:
        # Everything up to the first record still waiting (a running stream) is sealed.
        waiting = _unsealed_or_running(state.low_watermark).aggregate(first=Min("id"))["first"]
        if waiting is not None:
            state.next_watermark = waiting - 1
        elif len(rows) < batch_size:
            state.next_watermark = AuditRecord.objects.aggregate(last=Max("id"))["last"] or 0
        else:
            state.next_watermark = rows[-1]["id"]
        state.next_at = now
    state.save()


def _unsealed_or_running(low_watermark: int) -> Any:
    return AuditRecord.objects.filter(id__gt=low_watermark).filter(
        ~Exists(AuditSeal.objects.filter(record_id=OuterRef("id")))
    )


def checkpoint_message(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return {
        "tenant_id": checkpoint.tenant_id,
        "kind": checkpoint.kind,
        "seq": checkpoint.seq,
        "head_hash": checkpoint.head_hash,
        "count": checkpoint.count,
        "purged_ranges": checkpoint.purged_ranges,
        "details": checkpoint.details,
        "created_at": chain.plain(checkpoint.created_at),
    }


def checkpoint_create(
    *,
    tenant_id: int,
    kind: str,
    seq: int,
    head_hash: str,
    count: int,
    purged_ranges: list[list[int]] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditCheckpoint:
    checkpoint = AuditCheckpoint(
        tenant_id=tenant_id,
        kind=kind,
        seq=seq,
        head_hash=head_hash,
        count=count,
        purged_ranges=purged_ranges or [],
        details=details or {},
        # Microseconds dropped: the signed text must match what the database gives back.
        created_at=timezone.now().replace(microsecond=0),
    )
    checkpoint.signature = chain.sign(checkpoint_message(checkpoint))
    checkpoint.save()
    return checkpoint


def audit_checkpoint_heads(*, min_interval: timedelta | None = None) -> list[AuditCheckpoint]:
    """Sign each chain head that moved since its last checkpoint (at most one per interval)."""
    interval = min_interval if min_interval is not None else timedelta(minutes=5)
    now = timezone.now()
    made = []
    with transaction.atomic():
        _lock()
        for head in AuditChainHead.objects.all():
            last = (
                AuditCheckpoint.objects.filter(tenant_id=head.tenant_id, kind=CheckpointKind.HEAD)
                .order_by("-seq")
                .first()
            )
            if last is not None and (last.seq >= head.seq or now - last.created_at < interval):
                continue
            made.append(
                checkpoint_create(
                    tenant_id=head.tenant_id,
                    kind=CheckpointKind.HEAD,
                    seq=head.seq,
                    head_hash=head.hash,
                    count=head.seq,
                )
            )
    return made

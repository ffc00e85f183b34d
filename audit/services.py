"""Writes around the audit trail: policies, legal holds, lawful erasure and retention purges.

Records themselves are written only by the proxy (audit/writer.py) and chained by the sealer.
Erasure and purge are the two changes the triggers allow besides a stream's completion; each
turns its permission on for one statement inside its own transaction (docs/audit.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from audit.activity.services import SYSTEM, Actor, activity_record
from audit.models import (
    AuditAccess,
    AuditChainHead,
    AuditCheckpoint,
    AuditErasure,
    AuditMonth,
    AuditPolicy,
    AuditRecord,
    AuditSeal,
    CheckpointKind,
    LegalHold,
    MonthState,
)
from audit.partitions import audit_months_drop_expired, month_bounds
from audit.sealer import audit_seal_pending, checkpoint_create
from audit.selectors import held_q, holds_locked
from audit.signals import records_erased
from tenants.models import Tenant


class AuditError(Exception):
    """A change to the audit trail the rules do not allow; the message says why."""


def _privileged(flag: str, on: bool) -> None:
    # Transaction-scoped: the permission ends with the transaction even if the statement fails.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, true)", [flag, "on" if on else "off"])


def audit_policy_set(
    *, tenant: Tenant, content_mode: str, retention_days: int | None, actor: Actor
) -> AuditPolicy:
    with transaction.atomic():
        policy, _ = AuditPolicy.objects.update_or_create(
            tenant=tenant,
            defaults={"content_mode": content_mode, "retention_days": retention_days},
        )
        activity_record(
            actor=actor,
            action="audit.policy.set",
            target=policy,
            tenant_id=tenant.pk,
            details={"content_mode": content_mode, "retention_days": retention_days},
        )
    return policy


def legal_hold_place(
    *,
    tenant: Tenant,
    reason: str,
    actor: Actor,
    end_user: str = "",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> LegalHold:
    if not reason.strip():
        raise AuditError("a legal hold needs a reason (e.g. the matter it is for)")
    with transaction.atomic():
        holds_locked(tenant.pk)  # a purge or an erasure running now finishes first, or waits
        hold = LegalHold.objects.create(
            tenant=tenant, end_user=end_user, starts_at=starts_at, ends_at=ends_at, reason=reason
        )
        activity_record(
            actor=actor,
            action="audit.hold.place",
            target=hold,
            tenant_id=tenant.pk,
            details={"end_user": end_user, "reason": reason},
        )
    return hold


def legal_hold_release(*, hold: LegalHold, actor: Actor) -> LegalHold:
    with transaction.atomic():
        hold.released_at = timezone.now()
        hold.save(update_fields=["released_at"])
        activity_record(
            actor=actor, action="audit.hold.release", target=hold, tenant_id=hold.tenant_id
        )
    return hold


def audit_records_erase(*, tenant: Tenant, end_user: str, reason: str, actor: Actor) -> int:
    """Lawful erasure of one end user's prompts and responses: tombstones stay, chain verifies.

    Records under legal hold are kept whole (a hold for legal claims outranks erasure), and the
    call fails saying so rather than erasing part of them silently.
    """
    if not end_user or not reason.strip():
        raise AuditError("an erasure names the end user and the reason (e.g. the request ref)")
    audit_seal_pending()  # the payload's hash must be in the chain before the payload goes
    records = AuditRecord.objects.filter(tenant=tenant, end_user=end_user)
    if (held := held_q(tenant.pk)) is not None and records.filter(held).exists():
        raise AuditError(f"records of {end_user} are under legal hold: release the hold first")
    if records.filter(~Exists(AuditSeal.objects.filter(record_id=OuterRef("id")))).exists():
        raise AuditError(f"a request of {end_user} is still streaming: retry when it has ended")
    todo = records.filter(~Exists(AuditErasure.objects.filter(record_id=OuterRef("id"))))
    seals = AuditSeal.objects.filter(record_id=OuterRef("id")).values("payload_hash")
    now = timezone.now()
    erased = 0
    with transaction.atomic():
        holds_locked(tenant.pk)
        if (held := held_q(tenant.pk)) is not None and records.filter(held).exists():
            raise AuditError(f"records of {end_user} are under legal hold: release the hold first")
        found = list(
            todo.annotate(sealed_payload=Subquery(seals)).values_list(
                "id", "sealed_payload", "request_id"
            )
        )
        rows = [(record_id, payload) for record_id, payload, _ in found]
        ids = [record_id for record_id, _ in rows]
        if ids:
            _privileged("audit.erase", True)
            AuditRecord.objects.filter(id__in=ids).update(
                request_body=None, response_body=None, tool_calls=[], tool_results=[]
            )
            _privileged("audit.erase", False)
        AuditErasure.objects.bulk_create(
            AuditErasure(
                record_id=record_id,
                tenant=tenant,
                payload_hash=payload,
                reason=reason,
                actor_label=actor.label,
                erased_at=now,
            )
            for record_id, payload in rows
        )
        erased = len(rows)
        # Copies kept elsewhere go too, even when every record was erased before: a client may
        # have added conversation items since, which no record names.
        copies = records_erased.send(
            sender=AuditRecord,
            tenant_id=tenant.pk,
            request_ids=[r for _, _, r in found],
            end_user=end_user,
        )
        copied = sum(int(count or 0) for _, count in copies)
        if not erased and not copied:
            return 0
        activity_record(
            actor=actor,
            action="audit.erase",
            target=tenant,
            tenant_id=tenant.pk,
            details={
                "end_user": end_user,
                "reason": reason,
                "records": erased,
                "copies": copied,
            },
        )
    return erased


def _ranges(seqs: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for seq in sorted(seqs):
        if runs and runs[-1][1] == seq - 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return runs


def retention_cutoff(tenant_id: int, now: datetime) -> datetime | None:
    """Records of the tenant started before this are past retention; None: kept for ever."""
    policy = AuditPolicy.objects.filter(tenant_id=tenant_id).first()
    days = policy.retention_days if policy else settings.AUDIT_DEFAULT_RETENTION_DAYS
    return None if days is None else now - timedelta(days=days)


def expired_records(tenant_id: int, now: datetime) -> QuerySet[AuditRecord] | None:
    """A tenant's sealed records past retention and under no hold; None if it keeps them all."""
    cutoff = retention_cutoff(tenant_id, now)
    if cutoff is None:
        return None
    records = AuditRecord.objects.filter(tenant_id=tenant_id, started_at__lt=cutoff).filter(
        Exists(AuditSeal.objects.filter(record_id=OuterRef("id")))
    )
    if (held := held_q(tenant_id)) is not None:
        records = records.exclude(held)
    # A month re-attached from its archive is read-only, and stays until it is detached.
    attached = AuditMonth.objects.filter(state=MonthState.ATTACHED)
    for month in attached.values_list("month", flat=True):
        start, end = month_bounds(month)
        records = records.exclude(started_at__gte=start, started_at__lt=end)
    return records


def audit_retention_purge(
    *, now: datetime | None = None, batch_size: int = 5000, actor: Actor = SYSTEM
) -> list[AuditCheckpoint]:
    """Drop whole sealed months past retention (PostgreSQL, audit/partitions.py), then delete
    the expired, unheld records left (the default partition, a month shared with a tenant that
    keeps longer, SQLite); each batch leaves a signed checkpoint of what went."""
    now = now or timezone.now()
    audit_seal_pending()
    made: list[AuditCheckpoint] = []
    for month in audit_months_drop_expired(now=now, actor=actor):
        made.extend(
            AuditCheckpoint.objects.filter(
                kind=CheckpointKind.PURGE, details__partition=month.table
            ).order_by("id")
        )
    for tenant_id in Tenant.objects.values_list("id", flat=True):
        while (records := expired_records(tenant_id, now)) is not None:
            seal_seq = AuditSeal.objects.filter(record_id=OuterRef("id")).values("seq")
            rows = list(
                records.annotate(seq=Subquery(seal_seq)).values_list("id", "seq")[:batch_size]
            )
            if not rows:
                break
            purged = _purge(tenant_id, rows, now, actor)
            if purged is not None:
                made.append(purged)
            if len(rows) < batch_size:
                break
    return made


def _purge(
    tenant_id: int, rows: list[tuple[int, int]], now: datetime, actor: Actor
) -> AuditCheckpoint | None:
    with transaction.atomic():
        # The batch was chosen outside this transaction: a hold placed since is honoured here.
        holds_locked(tenant_id)
        doomed = AuditRecord.objects.filter(id__in=[record_id for record_id, _ in rows])
        if (held := held_q(tenant_id)) is not None:
            doomed = doomed.exclude(held)
        going = set(doomed.values_list("id", flat=True))
        cutoff = retention_cutoff(tenant_id, now)
        cutoff_epoch = int(cutoff.timestamp()) if cutoff is not None else None
        rows = [row for row in rows if row[0] in going]
        if not rows:
            return None
        _privileged("audit.purge", True)
        AuditRecord.objects.filter(id__in=going).delete()
        _privileged("audit.purge", False)
        head = AuditChainHead.objects.get(tenant_id=tenant_id)
        return checkpoint_create(
            tenant_id=tenant_id,
            kind=CheckpointKind.PURGE,
            seq=head.seq,
            head_hash=head.hash,
            count=len(rows),
            purged_ranges=_ranges([seq for _, seq in rows]),
            # `cutoff_epoch`: records started before it may be gone, so the cost rollups of
            # that time are kept as rolled, never rebuilt from what is left (billing/rollups.py).
            details={"before": now.isoformat(), "by": actor.label, "cutoff_epoch": cutoff_epoch},
        )


def audit_access_record(
    *,
    user: Any,
    action: str,
    tenant_id: int,
    query: dict[str, Any] | None = None,
    record_count: int | None = None,
) -> AuditAccess:
    """Who looked at what: every console search, record view and export is recorded."""
    return AuditAccess.objects.create(
        occurred_at=timezone.now(),
        user=user if getattr(user, "pk", None) else None,
        user_label=str(user.get_username())[:200],
        action=action,
        tenant_ids=[tenant_id],
        query=query or {},
        record_count=record_count,
    )

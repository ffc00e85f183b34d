"""Verification of a tenant's chain: recompute every link and name the first one that breaks.

A whole chain is also held against its head (`AuditChainHead`, which the sealer moves with every
link): links the head knows but the tables no longer hold are a truncated tail, even when their
checkpoints went too. Links left without a signed checkpoint for longer than the checkpoints'
cadence allows are reported as well: the checkpoint that covered them was deleted, or none is
being made (then the tail is unprotected).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from audit import chain
from audit.models import (
    AuditChainHead,
    AuditCheckpoint,
    AuditErasure,
    AuditRecord,
    AuditSeal,
    CheckpointKind,
)
from audit.sealer import checkpoint_message

_CHUNK = 2000
_MAX_BREAKS = 50


@dataclass(frozen=True, slots=True)
class Break:
    seq: int | None
    record_id: int | None
    request_id: str
    reason: str

    def describe(self) -> str:
        where = f"link #{self.seq}" if self.seq is not None else "checkpoint"
        record = f" (record {self.record_id}, request {self.request_id or '?'})"
        return f"{where}{record if self.record_id else ''}: {self.reason}"


@dataclass
class ChainReport:
    tenant_id: int
    first_seq: int = 0
    last_seq: int = 0
    checked: int = 0
    purged: int = 0
    erased: int = 0
    checkpoints: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> Break | None:
        return self.breaks[0] if self.breaks else None

    def add(self, problem: Break) -> None:
        if len(self.breaks) < _MAX_BREAKS:
            self.breaks.append(problem)


def audit_chain_verify(
    *, tenant_id: int, since: datetime | None = None, until: datetime | None = None
) -> ChainReport:
    """Verify a tenant's whole chain, or the links of the records started in [since, until)."""
    report = ChainReport(tenant_id=tenant_id)
    seals = AuditSeal.objects.filter(tenant_id=tenant_id)
    whole = since is None and until is None
    head = AuditChainHead.objects.filter(tenant_id=tenant_id).first() if whole else None
    bounds = _bounds(tenant_id, since, until, head.seq if head else 0)
    if bounds is None:
        return report
    lo, hi = bounds
    report.first_seq, report.last_seq = lo, hi
    purged = _purged_seqs(tenant_id, report)
    previous = (
        chain.GENESIS
        if lo == 1
        else seals.filter(seq=lo - 1).values_list("hash", flat=True).first() or None
    )
    expected = lo
    for seal, row, erasure in _links(seals.filter(seq__gte=lo, seq__lte=hi)):
        if seal.seq != expected:
            report.add(Break(expected, None, "", f"links #{expected}..#{seal.seq - 1} are missing"))
        _check_link(report, seal, row, erasure, previous, purged)
        previous, expected = seal.hash, seal.seq + 1
        report.checked += 1
    if expected <= hi:
        missing = f"links #{expected}..#{hi} are missing"
        if head is not None and head.seq >= hi:
            missing = (
                f"the chain head knows {head.seq} links, {report.checked} found: {missing} "
                "(the newest records were deleted with their seals)"
            )
        report.add(Break(expected, None, "", missing))
    if whole:
        _check_head(report, tenant_id, head, hi)
        covered = _check_head_checkpoints(report, tenant_id)
        _check_checkpoint_age(report, tenant_id, covered, hi)
    return report


def _bounds(
    tenant_id: int, since: datetime | None, until: datetime | None, head_seq: int = 0
) -> tuple[int, int] | None:
    seals = AuditSeal.objects.filter(tenant_id=tenant_id)
    if since is None and until is None:
        top = seals.order_by("-seq").values_list("seq", flat=True).first()
        last_checkpoint = (
            AuditCheckpoint.objects.filter(tenant_id=tenant_id, kind=CheckpointKind.HEAD)
            .order_by("-seq")
            .values_list("seq", flat=True)
            .first()
        )
        top = max(top or 0, last_checkpoint or 0, head_seq)
        return (1, top) if top else None
    records = AuditRecord.objects.filter(tenant_id=tenant_id)
    if since is not None:
        records = records.filter(started_at__gte=since)
    if until is not None:
        records = records.filter(started_at__lt=until)
    ids = records.values("id")
    in_range = seals.filter(record_id__in=ids).order_by("seq").values_list("seq", flat=True)
    first = in_range.first()
    last = in_range.last()
    return (first, last) if first is not None and last is not None else None


def _links(seals: Any) -> Iterator[tuple[AuditSeal, dict[str, Any] | None, AuditErasure | None]]:
    last = 0
    while True:
        chunk = list(seals.filter(seq__gt=last).order_by("seq")[:_CHUNK])
        if not chunk:
            return
        ids = [seal.record_id for seal in chunk]
        rows = {
            row["id"]: row
            for row in AuditRecord.objects.filter(id__in=ids).values(*chain.RECORD_COLUMNS)
        }
        erasures = {e.record_id: e for e in AuditErasure.objects.filter(record_id__in=ids)}
        for seal in chunk:
            yield seal, rows.get(seal.record_id), erasures.get(seal.record_id)
        last = chunk[-1].seq


def _check_link(
    report: ChainReport,
    seal: AuditSeal,
    row: dict[str, Any] | None,
    erasure: AuditErasure | None,
    previous: str | None,
    purged: set[int],
) -> None:
    def broken(reason: str) -> None:
        report.add(Break(seal.seq, seal.record_id, row["request_id"] if row else "", reason))

    if previous is not None and seal.prev_hash != previous:
        broken("its previous-hash does not match the link before it (links rewritten)")
    if seal.hash != chain.link_hash(seal.prev_hash, seal.seq, seal.content_hash):
        broken("the link's own hash is wrong (the seal was altered)")
    if row is None:
        if seal.seq in purged:
            report.purged += 1
        else:
            broken("the record is missing and no signed retention purge covers it")
        return
    if row["tenant_id"] != seal.tenant_id:
        broken("the record belongs to another tenant")
    if erasure is not None:
        report.erased += 1
        if any(row[name] not in (None, []) for name in chain.PAYLOAD_FIELDS):
            broken("the record has a payload although its erasure tombstone says it was removed")
        if erasure.payload_hash != seal.payload_hash:
            broken("the erasure tombstone names another payload than the one sealed")
    elif chain.payload_hash(row) != seal.payload_hash:
        broken("the payload (request, response or tool calls) was altered after sealing")
    if chain.content_hash(row, seal.payload_hash, seal.version) != seal.content_hash:
        broken("the record's content was altered after sealing")


def _purged_seqs(tenant_id: int, report: ChainReport) -> set[int]:
    seqs: set[int] = set()
    for checkpoint in AuditCheckpoint.objects.filter(
        tenant_id=tenant_id, kind=CheckpointKind.PURGE
    ):
        report.checkpoints += 1
        if not chain.signature_valid(checkpoint_message(checkpoint), checkpoint.signature):
            report.add(
                Break(None, None, "", f"purge checkpoint {checkpoint.pk} has a bad signature")
            )
            continue
        for first, last in checkpoint.purged_ranges:
            seqs.update(range(first, last + 1))
    return seqs


def _check_head(report: ChainReport, tenant_id: int, head: AuditChainHead | None, top: int) -> None:
    """The head's hash is the hash of its last link (the sealer writes both together)."""
    if head is None or head.seq == 0:
        if top:
            report.add(Break(None, None, "", f"the chain head is gone, the chain reaches #{top}"))
        return
    last = AuditSeal.objects.filter(tenant_id=tenant_id, seq=head.seq).first()
    if last is not None and last.hash != head.hash:
        report.add(
            Break(
                head.seq,
                last.record_id,
                "",
                f"the chain head's hash differs from link #{head.seq} (one of them was rewritten)",
            )
        )


def _check_checkpoint_age(report: ChainReport, tenant_id: int, covered: int, top: int) -> None:
    """Links sealed long ago must be under a signed checkpoint; otherwise one went missing."""
    grace = settings.AUDIT_CHECKPOINT_GRACE_MINUTES
    if grace <= 0 or top <= covered:
        return
    grace = max(grace, 2 * settings.AUDIT_CHECKPOINT_MINUTES)
    first = (
        AuditSeal.objects.filter(tenant_id=tenant_id, seq__gt=covered)
        .order_by("seq")
        .values_list("seq", "sealed_at")
        .first()
    )
    if first is None or timezone.now() - first[1] < timedelta(minutes=grace):
        return
    seq, sealed_at = first
    report.add(
        Break(
            seq,
            None,
            "",
            f"no signed checkpoint covers links #{covered + 1}..#{top}, although link #{seq} was "
            f"sealed at {sealed_at:%Y-%m-%d %H:%M:%S} UTC, more than {grace} minutes ago "
            f"(checkpoints are signed every {settings.AUDIT_CHECKPOINT_MINUTES} minutes): a "
            "checkpoint was deleted, or the audit.seal beat task (or `manage.py audit_seal`) "
            "is not running",
        )
    )


def _check_head_checkpoints(report: ChainReport, tenant_id: int) -> int:
    """Check the signed head checkpoints; returns the last link a valid one covers."""
    covered = 0
    hashes_needed = AuditCheckpoint.objects.filter(tenant_id=tenant_id, kind=CheckpointKind.HEAD)
    checkpoints = list(hashes_needed.order_by("seq"))
    # Read after the checkpoints: a checkpoint signs a head already committed, and the head only
    # moves forward, so one signed while a long verification ran is not taken for a rollback.
    head_seq = (
        AuditChainHead.objects.filter(tenant_id=tenant_id).values_list("seq", flat=True).first()
        or 0
    )
    sealed = dict(
        AuditSeal.objects.filter(
            tenant_id=tenant_id, seq__in=hashes_needed.values("seq")
        ).values_list("seq", "hash")
    )
    for checkpoint in checkpoints:
        report.checkpoints += 1
        when = f"{checkpoint.created_at:%Y-%m-%d %H:%M:%S} UTC"
        if not chain.signature_valid(checkpoint_message(checkpoint), checkpoint.signature):
            report.add(Break(None, None, "", f"the checkpoint of {when} has a bad signature"))
            continue
        covered = max(covered, checkpoint.seq)
        if checkpoint.seq > head_seq:
            report.add(
                Break(
                    checkpoint.seq,
                    None,
                    "",
                    f"the chain head knows {head_seq} links, but the signed checkpoint of {when} "
                    f"saw {checkpoint.count} (the head was moved back)",
                )
            )
        if checkpoint.seq not in sealed:
            report.add(
                Break(
                    checkpoint.seq,
                    None,
                    "",
                    f"the chain was truncated: the signed checkpoint of {when} saw "
                    f"{checkpoint.count} links, link #{checkpoint.seq} is gone",
                )
            )
        elif sealed[checkpoint.seq] != checkpoint.head_hash:
            report.add(
                Break(
                    checkpoint.seq,
                    None,
                    "",
                    f"link #{checkpoint.seq} differs from the signed checkpoint of {when}",
                )
            )
    return covered

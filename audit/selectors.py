"""Reads of the audit trail for the compliance console. Every read is scoped to one tenant."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, Count, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.expressions import RawSQL
from psycopg.errors import QueryCanceled

from audit import chain
from audit.models import (
    MCP_TOOL_CALL_ENDPOINT,
    AuditCheckpoint,
    AuditErasure,
    AuditPolicy,
    AuditRecord,
    AuditSeal,
    CheckpointKind,
    ContentMode,
    ErasureRequest,
    LegalHold,
    RecordKind,
)
from tenants.models import ApiKey, Tenant

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What a compliance user searches by; empty values do not filter."""

    text: str = ""
    since: datetime | None = None
    until: datetime | None = None
    team_id: int | None = None
    end_user: str = ""
    agent: str = ""
    api_key_id: int | None = None
    model: str = ""
    upstream_model: str = ""
    provider: str = ""
    status: str = ""
    finding: str = ""
    prompt_name: str = ""
    prompt_version: int | None = None
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None
    kind: str = ""  # RecordKind: model requests or MCP tool calls only
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        values = {
            name: getattr(self, name)
            for name in self.__slots__
            if name != "extra" and getattr(self, name) not in (None, "")
        }
        return {k: v.isoformat() if isinstance(v, datetime) else str(v) for k, v in values.items()}


MAX_SEARCH_WORDS = 12


def search_words(text: str) -> list[str]:
    """The words a search text looks for: letters and digits, punctuation between them dropped."""
    return _WORD.findall(text)


def text_query(text: str) -> str:
    """A prefix tsquery of the words typed (`adv cli` finds 'advisor client'), safe to bind.
    Text with no word, or too many, is refused (ValueError): dropping a word would widen the
    search, and an empty query would match everything."""
    words = search_words(text)
    if not words or len(words) > MAX_SEARCH_WORDS:
        raise ValueError(f"a search text needs 1 to {MAX_SEARCH_WORDS} words: {text!r}")
    return " & ".join(f"{word}:*" for word in words)


# Up to this many matches, a search lists them through the GIN index and sorts them; beyond, the
# word is common enough that walking the time index finds a page of matches at once. PostgreSQL
# cannot tell the two apart from statistics (it walked a month of rows for a word in none).
RARE_MATCHES = 5000
_MATCH = "audit_auditrecord.search_document @@ to_tsquery('english'::regconfig, %s)"


def _rare_match_ids(tenant_id: int, query: str) -> list[int] | None:
    """Every match of the tenant if there are few (through the GIN index only), else None."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(
            f"SELECT id FROM audit_auditrecord WHERE tenant_id = %s AND {_MATCH} LIMIT %s",  # noqa: S608 - constant text
            [tenant_id, query, RARE_MATCHES + 1],
        )
        ids = [row[0] for row in cursor.fetchall()]
    return ids if len(ids) <= RARE_MATCHES else None


def _text_match(
    records: QuerySet[AuditRecord], tenant_id: int, text: str, *, probe: bool
) -> QuerySet[AuditRecord]:
    query = text_query(text)
    if connection.vendor != "postgresql":  # SQLite: a plain substring match over the JSON
        return records.filter(Q(request_body__icontains=text) | Q(response_body__icontains=text))
    if probe and (ids := _rare_match_ids(tenant_id, query)) is not None:
        return records.filter(id__in=ids)
    # `search_document` is the stored, GIN-indexed tsvector of migration 0007 (not a model field);
    # the words typed are a bound parameter.
    match = RawSQL(_MATCH, [query], output_field=BooleanField())  # noqa: S611
    return records.alias(text_match=match).filter(text_match=True)


def recent_checkpoints(*, tenant: Tenant, count: int = 10) -> list[AuditCheckpoint]:
    return list(AuditCheckpoint.objects.filter(tenant=tenant).order_by("-created_at")[:count])


def audit_records_search(
    *, tenant_id: int, filters: AuditFilters, probe_rare_text: bool = True
) -> QuerySet[AuditRecord]:
    """A tenant's records matching the filters, newest first.

    With `probe_rare_text` (exports), a text search first lists a rare word's matches through the
    full-text index; without it (pages), the query walks time order and the caller bounds it.
    """
    records = AuditRecord.objects.filter(tenant_id=tenant_id)
    f = filters
    exact: dict[str, Any] = {
        "started_at__gte": f.since,
        "started_at__lt": f.until,
        "team_id": f.team_id,
        "end_user": f.end_user,
        "agent": f.agent,
        "api_key_id": f.api_key_id,
        "provider_name": f.provider,
        "status": f.status,
        "prompt_name": f.prompt_name,
        "prompt_version": f.prompt_version,
        "cost_usd__gte": f.min_cost,
        "cost_usd__lte": f.max_cost,
    }
    records = records.filter(**{k: v for k, v in exact.items() if v not in (None, "")})
    if f.model:  # the public name asked for (served by the tenant+model+time index)
        records = records.filter(model_requested=f.model)
    if f.upstream_model:
        records = records.filter(upstream_model=f.upstream_model)
    if f.kind == RecordKind.TOOL:
        records = records.filter(endpoint=MCP_TOOL_CALL_ENDPOINT)
    elif f.kind == RecordKind.MODEL:
        records = records.exclude(endpoint=MCP_TOOL_CALL_ENDPOINT)
    if f.finding:
        # A finding of this check or type (the guardrails record both); jsonb containment.
        records = records.filter(
            Q(guardrail_findings__contains=[{"type": f.finding}])
            | Q(guardrail_findings__contains=[{"check": f.finding}])
        )
    if f.text:
        records = _text_match(records, tenant_id, f.text, probe=probe_rare_text)
    return records.order_by("-started_at", "-id")


def before_position(
    records: QuerySet[AuditRecord], at: datetime, record_id: int
) -> QuerySet[AuditRecord]:
    """Records older than a keyset position. `started_at <= at` on its own lets PostgreSQL start
    the time index there; the tie-break alone would make it scan from the newest record."""
    return records.filter(started_at__lte=at).filter(Q(started_at__lt=at) | Q(id__lt=record_id))


# A page that takes longer than this walking time order is a rare word: ask the index instead.
WALK_TIMEOUT_MS = 300


def audit_records_page(
    *, tenant_id: int, filters: AuditFilters, before: tuple[datetime, int] | None, size: int = 50
) -> tuple[list[AuditRecord], tuple[datetime, int] | None]:
    """One page of results by keyset (fast on any page of a year of records, no COUNT)."""

    def fetch(probe: bool) -> list[AuditRecord]:
        records = audit_records_search(tenant_id=tenant_id, filters=filters, probe_rare_text=probe)
        if before is not None:
            at, record_id = before
            records = before_position(records, at, record_id)
        return list(records.select_related("team", "api_key")[: size + 1])

    if filters.text and connection.vendor == "postgresql":
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {WALK_TIMEOUT_MS}")
                rows = fetch(probe=False)
        except OperationalError as error:
            if not isinstance(error.__cause__, QueryCanceled):
                raise
            # Matches are sparse in time: collect them through the full-text index (a rare word's
            # few ids, else a bitmap of the matches) and sort them.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
                cursor.execute("SET LOCAL enable_seqscan = off")
                rows = fetch(probe=True)
    else:
        rows = fetch(probe=False)
    more = len(rows) > size
    rows = rows[:size]
    return rows, ((rows[-1].started_at, rows[-1].pk) if more and rows else None)


def audit_record_get(*, tenant_id: int, request_id: str) -> AuditRecord | None:
    return (
        AuditRecord.objects.filter(tenant_id=tenant_id, request_id=request_id)
        .select_related("team", "api_key")
        .first()
    )


@dataclass(frozen=True, slots=True)
class ChainStatus:
    state: str  # "verified" | "broken" | "pending" (not sealed yet)
    message: str
    seq: int | None = None
    hash: str = ""
    erasure: AuditErasure | None = None
    checkpoint: AuditCheckpoint | None = None


def audit_record_chain_status(*, record: AuditRecord) -> ChainStatus:
    """This record's link: is it sealed, does its content still match, is it under a checkpoint."""
    seal = AuditSeal.objects.filter(record_id=record.pk, tenant_id=record.tenant_id).first()
    if seal is None:
        return ChainStatus("pending", "Not chained yet: records are sealed within seconds.")
    row = AuditRecord.objects.filter(pk=record.pk).values(*chain.RECORD_COLUMNS).get()
    erasure = AuditErasure.objects.filter(record_id=record.pk).first()
    payload_ok = erasure is not None or chain.payload_hash(row) == seal.payload_hash
    content_ok = chain.content_hash(row, seal.payload_hash, seal.version) == seal.content_hash
    link_ok = seal.hash == chain.link_hash(seal.prev_hash, seal.seq, seal.content_hash)
    previous = AuditSeal.objects.filter(tenant_id=seal.tenant_id, seq=seal.seq - 1).first()
    prev_ok = seal.prev_hash == (previous.hash if previous else chain.GENESIS)
    checkpoint = (
        AuditCheckpoint.objects.filter(
            tenant_id=seal.tenant_id, kind=CheckpointKind.HEAD, seq__gte=seal.seq
        )
        .order_by("seq")
        .first()
    )
    if not (payload_ok and content_ok and link_ok and prev_ok):
        what = "content" if not content_ok else "payload" if not payload_ok else "link"
        return ChainStatus(
            "broken",
            f"Link #{seal.seq} does not verify: the record's {what} changed after sealing.",
            seal.seq,
            seal.hash,
            erasure,
            checkpoint,
        )
    return ChainStatus(
        "verified",
        f"Link #{seal.seq} of this tenant's chain verifies.",
        seal.seq,
        seal.hash,
        erasure,
        checkpoint,
    )


def with_seal(records: QuerySet[AuditRecord]) -> QuerySet[AuditRecord]:
    """Each record with its chain position and link hash (null until sealed)."""
    seal = AuditSeal.objects.filter(record_id=OuterRef("id"))
    return records.annotate(
        chain_seq=Subquery(seal.values("seq")[:1]),
        chain_hash=Subquery(seal.values("hash")[:1]),
    )


# --- usage per virtual key (the key pages) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyUsage:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    last_used_at: datetime | None = None


def key_usage(*, tenant: Tenant, key_ids: list[int]) -> dict[int, KeyUsage]:
    rows = (
        AuditRecord.objects.filter(tenant=tenant, api_key_id__in=key_ids)
        .values("api_key_id")
        .annotate(
            requests=Count("id"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cost_usd=Sum("cost_usd"),
            last_used_at=Max("started_at"),
        )
    )
    return {
        row["api_key_id"]: KeyUsage(
            requests=row["requests"],
            prompt_tokens=row["prompt_tokens"] or 0,
            completion_tokens=row["completion_tokens"] or 0,
            cost_usd=row["cost_usd"] or Decimal(0),
            last_used_at=row["last_used_at"],
        )
        for row in rows
    }


def key_recent_requests(*, tenant: Tenant, key: ApiKey, limit: int = 20) -> QuerySet[AuditRecord]:
    return AuditRecord.objects.filter(tenant=tenant, api_key_id=key.pk).order_by("-started_at")[
        :limit
    ]


# --- the tenant's audit governance (the console's policy, holds and erasure pages) ------------


def audit_policy_of(*, tenant_id: int) -> AuditPolicy | None:
    return AuditPolicy.objects.filter(tenant_id=tenant_id).first()


def legal_holds_of(*, tenant_id: int, limit: int = 200) -> list[LegalHold]:
    holds = LegalHold.objects.filter(tenant_id=tenant_id)
    return list(holds.order_by("released_at", "-created_at")[:limit])


def legal_hold_of(*, tenant_id: int, hold_id: int) -> LegalHold | None:
    return LegalHold.objects.filter(tenant_id=tenant_id, pk=hold_id).first()


def erasure_requests_of(*, tenant_id: int, limit: int = 200) -> list[ErasureRequest]:
    asked = ErasureRequest.objects.filter(tenant_id=tenant_id)
    return list(
        asked.select_related("requested_by", "decided_by").order_by("-requested_at")[:limit]
    )


def erasure_request_of(*, tenant_id: int, request_id: int) -> ErasureRequest | None:
    return ErasureRequest.objects.filter(tenant_id=tenant_id, pk=request_id).first()


def own_requests_page(
    *,
    tenant: Tenant,
    key_ids: list[int],
    since: datetime,
    before: tuple[datetime, int] | None,
    size: int = 50,
) -> tuple[list[AuditRecord], tuple[datetime, int] | None]:
    """A developer's own requests (its keys' records) since a moment, newest first, by keyset.

    Bounded twice: by the window (the tenant's time index is walked from now back to `since`)
    and by the page size, so a tenant with a year of records answers as fast as a new one.
    """
    records = AuditRecord.objects.filter(
        tenant=tenant, api_key_id__in=key_ids, started_at__gte=since
    ).order_by("-started_at", "-id")
    if before is not None:
        records = before_position(records, *before)
    rows = list(records.select_related("api_key")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, ((rows[-1].started_at, rows[-1].pk) if more and rows else None)


def own_request_get(*, tenant: Tenant, key_ids: list[int], request_id: str) -> AuditRecord | None:
    """One of a developer's own requests; another's (or another tenant's) is not found."""
    return (
        AuditRecord.objects.filter(tenant=tenant, api_key_id__in=key_ids, request_id=request_id)
        .select_related("team", "api_key")
        .first()
    )


def content_mode_of(*, tenant: Tenant) -> str:
    """How the tenant's records keep bodies (audit.models.ContentMode); full when unset."""
    policy = AuditPolicy.objects.filter(tenant=tenant).values_list("content_mode", flat=True)
    return policy.first() or ContentMode.FULL


def held_q(tenant_id: int) -> Q | None:
    """Records under an active legal hold, as a filter; None when nothing is held."""
    held: Q | None = None
    for hold in LegalHold.objects.filter(tenant_id=tenant_id, released_at__isnull=True):
        q = Q(pk__isnull=False)  # a hold on the whole tenant holds every record
        if hold.end_user:
            q &= Q(end_user=hold.end_user)
        if hold.starts_at:
            q &= Q(started_at__gte=hold.starts_at)
        if hold.ends_at:
            q &= Q(started_at__lt=hold.ends_at)
        held = q if held is None else held | q
    return held


def holds_locked(tenant_id: int) -> None:
    """Serialise, per tenant, placing a legal hold with deleting or erasing records: each takes
    the tenant's row lock in its transaction. Holds read after it are all the holds there are.
    FOR NO KEY UPDATE: the tenant's calls go on being recorded meanwhile (a record's foreign key
    takes only a key-share lock on its tenant), however long a purge runs."""
    Tenant.objects.select_for_update(no_key=True).filter(pk=tenant_id).first()

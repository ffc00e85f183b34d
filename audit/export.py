"""Streamed exports of a search (CSV or JSON Lines) in bounded memory, with a signed manifest.

Rows are read by keyset in chunks (no long-held cursor, no OFFSET), written as they come and
hashed on the way, so a million-row export holds one chunk at a time. When the last byte is out,
the manifest (row count, time range, chain anchors, SHA-256 of the file) is stored, signed.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.utils import timezone

from audit import chain
from audit.models import AuditCheckpoint, AuditErasure, AuditExport, CheckpointKind
from audit.sealer import audit_seal_pending
from audit.selectors import AuditFilters, audit_records_search, before_position, with_seal
from audit.storable import STORED_RULE
from gateway_site.csv_safe import CSV_RULE, CsvWriter
from tenants.models import Tenant

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_CHUNK = 1000
_EXTRA = ("team__slug", "api_key__name", "api_key__prefix", "chain_seq", "chain_hash")
CSV_COLUMNS = (
    "request_id",
    "started_at",
    "completed_at",
    "team",
    "end_user",
    "feature",
    "agent",
    "client_context",
    "api_key",
    "endpoint",
    "model_requested",
    "route_alias",
    "deployment_name",
    "provider_name",
    "upstream_model",
    "prompt_name",
    "prompt_version",
    "status",
    "http_status",
    "error_type",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "attempts",
    "routing",
    "guardrail_findings",
    "prompt",
    "tool_calls",
    "tool_results",
    "response",
    "stored_escaped",
    "erased",
    "chain_seq",
    "chain_hash",
)


def _json_text(value: Any) -> str:
    return "" if value in (None, [], {}) else orjson.dumps(value).decode()


def last_user_text(request_body: Any) -> str:
    """The last user message of a chat request, as text (for a readable CSV column)."""
    if not isinstance(request_body, dict):
        return ""
    for message in reversed(request_body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def answer_text(response_body: Any) -> str:
    if not isinstance(response_body, dict):
        return ""
    choices = response_body.get("choices") or []
    if choices and isinstance(choices[0], dict):
        return content_text((choices[0].get("message") or {}).get("content"))
    return content_text(response_body.get("content"))  # Anthropic-shaped bodies


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def _csv_row(row: dict[str, Any], erased: bool) -> list[Any]:
    # Amounts stay Decimals, so the CSV writer keeps them numbers (a credit's "-0.5" included).
    plain = {
        name: value if isinstance(value, Decimal) else chain.plain(value)
        for name, value in row.items()
    }
    values = {
        **plain,
        "team": row["team__slug"],
        "api_key": f"{row['api_key__name']} ({row['api_key__prefix']}…)",
        "client_context": _json_text(row["client_context"]),
        "attempts": _json_text(row["attempts"]),
        "routing": _json_text(row["routing"]),
        "guardrail_findings": _json_text(row["guardrail_findings"]),
        "prompt": last_user_text(row["request_body"]),
        "tool_calls": _json_text(row["tool_calls"]),
        "tool_results": _json_text(row["tool_results"]),
        "response": answer_text(row["response_body"]),
        "stored_escaped": " ".join(row["stored_escaped"] or ()),
        "erased": "yes" if erased else "",
    }
    return [values[name] if values[name] is not None else "" for name in CSV_COLUMNS]


def _jsonl_row(row: dict[str, Any], erased: bool) -> bytes:
    record = {name: chain.plain(row[name]) for name in chain.RECORD_COLUMNS}
    record.update(
        team=row["team__slug"],
        api_key=row["api_key__name"],
        erased=erased,
        chain={"seq": row["chain_seq"], "hash": row["chain_hash"]},
    )
    return orjson.dumps(record) + b"\n"


# What an export the database refuses says (a value its columns cannot be compared with).
OUT_OF_RANGE = "A filter's value is outside what the audit trail can be searched by."


@dataclass
class ExportRun:
    """One export as it streams: the counts and anchors its manifest will state."""

    tenant: Tenant
    filters: AuditFilters
    format: str
    user: Any
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    started_at: datetime = field(default_factory=timezone.now)
    rows: int = 0
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    unsealed: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    @property
    def filename(self) -> str:
        return f"audit-{self.tenant.slug}-{self.started_at:%Y%m%d-%H%M%S}.{self.format}"

    def start(self) -> Iterator[bytes]:
        """The export's chunks with its first page already read: filters the database refuses
        (a DataError) raise here, before any response is sent or the export is logged."""
        chunks = self.chunks()
        first = next(chunks, None)
        return itertools.chain(() if first is None else (first,), chunks)

    def chunks(self) -> Iterator[bytes]:
        # So the rows exported carry their chain positions; a large backlog is left to the beat
        # task (the manifest counts the rows not chained yet).
        audit_seal_pending(limit=20_000)
        for chunk in self._chunks():
            self.digest.update(chunk)
            yield chunk
        self._finish()

    def _chunks(self) -> Iterator[bytes]:
        records = with_seal(audit_records_search(tenant_id=self.tenant.pk, filters=self.filters))
        columns = (*chain.RECORD_COLUMNS, *_EXTRA)
        rows = list(records.values(*columns)[:_CHUNK])  # before the header: see start()
        if self.format == "csv":
            yield self._csv([list(CSV_COLUMNS)])
        while rows:
            erased = set(
                AuditErasure.objects.filter(record_id__in=[r["id"] for r in rows]).values_list(
                    "record_id", flat=True
                )
            )
            for row in rows:
                self._note(row)
            if self.format == "csv":
                yield self._csv([_csv_row(row, row["id"] in erased) for row in rows])
            else:
                yield b"".join(_jsonl_row(row, row["id"] in erased) for row in rows)
            at, record_id = rows[-1]["started_at"], rows[-1]["id"]
            rows = list(before_position(records, at, record_id).values(*columns)[:_CHUNK])

    @staticmethod
    def _csv(rows: list[list[Any]]) -> bytes:
        out = io.StringIO()
        CsvWriter(out).writerows(rows)
        return out.getvalue().encode()

    def _note(self, row: dict[str, Any]) -> None:
        self.rows += 1
        anchor = {
            "request_id": row["request_id"],
            "started_at": chain.plain(row["started_at"]),
            "seq": row["chain_seq"],
            "hash": row["chain_hash"],
        }
        if self.first is None:
            self.first = anchor  # newest first: the first row is the latest record
        self.last = anchor
        if row["chain_seq"] is None:
            self.unsealed += 1

    def manifest(self, completed_at: datetime) -> dict[str, Any]:
        head = (
            AuditCheckpoint.objects.filter(tenant=self.tenant, kind=CheckpointKind.HEAD)
            .order_by("-seq")
            .first()
        )
        return {
            "export_id": str(self.id),
            "tenant": self.tenant.slug,
            "format": self.format,
            "file_name": self.filename,
            "file_sha256": self.digest.hexdigest(),
            "exported_by": str(self.user.get_username()),
            "started_at": chain.plain(self.started_at),
            "completed_at": chain.plain(completed_at),
            "filters": self.filters.as_json(),
            "row_count": self.rows,
            # CSV text that a spreadsheet would run as a formula was prefixed; JSONL is exact.
            "cell_escaping": {"csv": CSV_RULE, "jsonl": "exact"},
            # Both formats carry the record as stored (so it hashes to its chain link); text the
            # database refuses is escaped in the columns each row names in `stored_escaped`.
            "stored_escaping": STORED_RULE,
            "time_range": {
                "from": self.last["started_at"] if self.last else None,
                "to": self.first["started_at"] if self.first else None,
            },
            "chain": {
                "canonical_form": chain.CANONICAL_VERSION,
                "newest": self.first,
                "oldest": self.last,
                "rows_not_yet_chained": self.unsealed,
                "head_checkpoint": None
                if head is None
                else {
                    "seq": head.seq,
                    "head_hash": head.head_hash,
                    "created_at": chain.plain(head.created_at),
                    "signature": head.signature,
                },
            },
        }

    def _finish(self) -> None:
        completed = timezone.now()
        manifest = self.manifest(completed)
        AuditExport.objects.create(
            id=self.id,
            tenant=self.tenant,
            user=self.user if getattr(self.user, "pk", None) else None,
            user_label=str(self.user.get_username())[:200],
            format=self.format,
            filters=self.filters.as_json(),
            started_at=self.started_at,
            completed_at=completed,
            manifest=manifest,
            signature=chain.sign(manifest),
        )


async def stream_async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Serve a sync generator under ASGI one chunk at a time (Django would buffer it all)."""

    def pull() -> bytes | None:
        return next(chunks, None)

    while (chunk := await sync_to_async(pull, thread_sensitive=True)()) is not None:
        yield chunk


def audit_export_get(*, tenant_id: int, export_id: uuid.UUID) -> AuditExport | None:
    return AuditExport.objects.filter(tenant_id=tenant_id, pk=export_id).first()


def audit_exports_recent(*, tenant_id: int, limit: int = 10) -> list[AuditExport]:
    return list(AuditExport.objects.filter(tenant_id=tenant_id).order_by("-completed_at")[:limit])

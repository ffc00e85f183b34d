"""Archives of sealed months: JSON Lines files and a signed manifest, on a filesystem or in any
S3-compatible store, verifiable offline, and re-attachable read-only.

One month's archive is a folder (`<destination>/<YYYY-MM>/`) of plain JSON Lines, one object a
line, so a single altered byte changes one line and verification names it:

- `records.jsonl`: every record of the month in the chain's canonical form (audit/chain.py),
  by id; each line hashes to its seal's content and payload hashes.
- `seals.jsonl`: the month's chain links, by tenant and position.
- `checkpoints.jsonl`: the signed head checkpoints that fall on those links.
- `erasures.jsonl`: the tombstones of records whose payload was lawfully erased.
- `manifest.json`: the month's signed summary (per tenant: records and chain positions, with the
  hash before each run of links and the hash at its end), each file's SHA-256 and line count, and
  an HMAC over it all with the installation's audit key.

Verification (`manage.py audit_verify --archive PATH|s3://bucket/prefix/YYYY-MM`) reads only the
archive: no database. It needs the installation's SECRET_KEY for the signatures.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from psycopg.types.json import Jsonb

from audit import chain
from audit.models import (
    AuditCheckpoint,
    AuditErasure,
    AuditMonth,
    AuditRecord,
    AuditSeal,
    CheckpointKind,
    MonthState,
)
from audit.partitions import (
    TABLE,
    PartitionError,
    month_bounds,
    month_current,
    month_seal,
    partitioned,
    table_name,
)

FORMAT = "gateway-audit-archive/1"
FILES = ("records.jsonl", "seals.jsonl", "checkpoints.jsonl", "erasures.jsonl")
MANIFEST = "manifest.json"
_SEAL_FIELDS = (
    "tenant_id",
    "seq",
    "record_id",
    "version",
    "payload_hash",
    "content_hash",
    "prev_hash",
    "hash",
    "sealed_at",
)
_ERASURE_FIELDS = ("record_id", "tenant_id", "payload_hash", "reason", "actor_label", "erased_at")
_MAX_PROBLEMS = 50


# --- where archives live ----------------------------------------------------------------------


class ArchiveStore(Protocol):
    url: str

    def put(self, name: str, source: Path) -> None: ...

    def fetch(self, name: str, target: Path) -> bool: ...


class FolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def put(self, name: str, source: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.root / name)

    def fetch(self, name: str, target: Path) -> bool:
        if not (self.root / name).is_file():
            return False
        shutil.copyfile(self.root / name, target)
        return True


class S3Store:
    """Any S3-compatible store (AWS, MinIO, Ceph...): credentials and region the usual boto3 way
    (AWS_* variables, ~/.aws), the endpoint from GATEWAY_AUDIT_ARCHIVE_S3_ENDPOINT if set."""

    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3  # only an installation archiving to S3 needs it loaded

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}"
        self.client = boto3.client("s3", endpoint_url=settings.AUDIT_ARCHIVE_S3_ENDPOINT or None)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, name: str, source: Path) -> None:
        self.client.upload_file(str(source), self.bucket, self._key(name))

    def fetch(self, name: str, target: Path) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(name), str(target))
        except ClientError:
            return False
        return True


def open_store(url: str) -> ArchiveStore:
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"an S3 archive URL names its bucket: {url!r}")
        return S3Store(bucket, prefix)
    return FolderStore(Path(url))


def month_url(destination: str, label: str) -> str:
    return f"{destination.rstrip('/')}/{label}"


# --- export -------------------------------------------------------------------------------------


class _Writer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] = path.open("wb")
        self.digest = hashlib.sha256()
        self.lines = 0

    def write(self, line: bytes) -> None:
        data = line + b"\n"
        self.file.write(data)
        self.digest.update(data)
        self.lines += 1

    def close(self) -> dict[str, Any]:
        self.file.close()
        return {
            "sha256": self.digest.hexdigest(),
            "lines": self.lines,
            "bytes": self.path.stat().st_size,
        }


def _plain_line(values: dict[str, Any]) -> bytes:
    return chain.canonical(values)


def manifest_signature(manifest: dict[str, Any]) -> str:
    return chain.sign({key: value for key, value in manifest.items() if key != "signature"})


def _runs(month: AuditMonth, seals: dict[tuple[int, int], tuple[str, str]]) -> dict[str, Any]:
    tenants: dict[str, Any] = {}
    for tenant_id, entry in month.tenants.items():
        runs = []
        for first, last in entry["ranges"]:
            runs.append(
                {
                    "first": first,
                    "last": last,
                    "prev_hash": seals[(int(tenant_id), first)][0],
                    "hash": seals[(int(tenant_id), last)][1],
                }
            )
        tenants[tenant_id] = {"count": entry["count"], "runs": runs}
    return tenants


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    url: str
    records: int
    manifest_sha256: str


def audit_month_archive(*, month: AuditMonth, destination: str) -> ArchiveResult:
    """Export a sealed month to `destination` (a folder or s3://bucket/prefix); the archive is
    `<destination>/<YYYY-MM>`. The month stays where it is: retention drops it later."""
    if month.state not in (MonthState.SEALED, MonthState.ATTACHED):
        raise PartitionError(
            f"{month.month:%Y-%m} is {month.state}: only a sealed month is archived"
        )
    if month.state == MonthState.SEALED and not month_current(month) and not month_seal(month):
        raise PartitionError(f"{month.month:%Y-%m} has records not chained yet")
    label = f"{month.month:%Y-%m}"
    store = open_store(month_url(destination, label))
    start, end = month_bounds(month.month)
    records = AuditRecord.objects.filter(started_at__gte=start, started_at__lt=end)
    ids = records.values("id")
    with tempfile.TemporaryDirectory(prefix="audit-archive-") as folder:
        work = Path(folder)
        files: dict[str, Any] = {}
        writer = _Writer(work / "records.jsonl")
        for row in records.order_by("id").values(*chain.RECORD_COLUMNS).iterator(chunk_size=2000):
            writer.write(_plain_line(row))
        files["records.jsonl"] = writer.close()
        writer = _Writer(work / "seals.jsonl")
        ends: dict[tuple[int, int], tuple[str, str]] = {}
        seals = AuditSeal.objects.filter(record_id__in=ids).order_by("tenant_id", "seq")
        for seal in seals.values(*_SEAL_FIELDS).iterator(chunk_size=5000):
            writer.write(_plain_line(seal))
            ends[(seal["tenant_id"], seal["seq"])] = (seal["prev_hash"], seal["hash"])
        files["seals.jsonl"] = writer.close()
        writer = _Writer(work / "checkpoints.jsonl")
        for tenant_id, entry in sorted(month.tenants.items()):
            for first, last in entry["ranges"]:
                for checkpoint in AuditCheckpoint.objects.filter(
                    tenant_id=int(tenant_id),
                    kind=CheckpointKind.HEAD,
                    seq__gte=first,
                    seq__lte=last,
                ).order_by("seq"):
                    writer.write(_plain_line(_checkpoint_values(checkpoint)))
        files["checkpoints.jsonl"] = writer.close()
        writer = _Writer(work / "erasures.jsonl")
        for erasure in (
            AuditErasure.objects.filter(record_id__in=ids)
            .order_by("record_id")
            .values(*_ERASURE_FIELDS)
        ):
            writer.write(_plain_line(erasure))
        files["erasures.jsonl"] = writer.close()
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "month": label,
            "table": month.table,
            "record_count": month.record_count,
            "last_record_id": month.last_record_id,
            "month_sealed_at": chain.plain(month.sealed_at),
            "tenants": _runs(month, ends),
            "files": files,
            "canonical_form": "audit/chain.py: sorted keys, compact JSON, times as UTC "
            "YYYY-MM-DDTHH:MM:SS.ffffffZ, costs as text with 10 places",
            "created_at": chain.plain(timezone.now()),
        }
        manifest["signature"] = manifest_signature(manifest)
        body = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        (work / MANIFEST).write_bytes(body)
        for name in FILES:
            store.put(name, work / name)
        store.put(MANIFEST, work / MANIFEST)  # last: an archive without it is unfinished
    month.archive_url = store.url
    month.archive_sha256 = hashlib.sha256(body).hexdigest()
    month.save(update_fields=["archive_url", "archive_sha256"])
    return ArchiveResult(store.url, files["records.jsonl"]["lines"], month.archive_sha256)


def _checkpoint_values(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    from audit.sealer import checkpoint_message

    return {**checkpoint_message(checkpoint), "signature": checkpoint.signature}


# --- verification, from the archive alone ---------------------------------------------------


@dataclass
class ArchiveReport:
    url: str
    month: str = ""
    records: int = 0
    seals: int = 0
    checkpoints: int = 0
    erased: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(problem)


def _lines(path: Path, name: str, report: ArchiveReport) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                report.add(f"{name} line {number}: not valid JSON (the line was altered)")
                continue
            if not isinstance(value, dict):
                report.add(f"{name} line {number}: not a JSON object (the line was altered)")
                continue
            yield number, value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_verify(url: str) -> ArchiveReport:
    """Check an archived month from its files alone; each problem names its file and line, and
    the record or link it concerns."""
    report = ArchiveReport(url=url)
    store = open_store(url)
    with tempfile.TemporaryDirectory(prefix="audit-verify-") as folder:
        work = Path(folder)
        if not store.fetch(MANIFEST, work / MANIFEST):
            report.add(f"{MANIFEST}: not found (not an archive, or its export did not finish)")
            return report
        try:
            manifest = orjson.loads((work / MANIFEST).read_bytes())
        except orjson.JSONDecodeError:
            report.add(f"{MANIFEST}: not valid JSON (the manifest was altered)")
            return report
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            report.add(f"{MANIFEST}: not a {FORMAT} manifest")
            return report
        report.month = str(manifest.get("month", ""))
        if not chain.signature_valid(
            {k: v for k, v in manifest.items() if k != "signature"},
            str(manifest.get("signature", "")),
        ):
            report.add(
                f"{MANIFEST}: its signature does not match (the manifest was altered, or another "
                "installation's key signed it)"
            )
        for name in FILES:
            if not store.fetch(name, work / name):
                report.add(f"{name}: missing from the archive")
                return report
            stated = manifest.get("files", {}).get(name, {})
            if _sha256(work / name) != stated.get("sha256"):
                report.add(
                    f"{name}: its SHA-256 differs from the manifest's (the file was altered)"
                )
        seals = _verify_seals(work / "seals.jsonl", manifest, report)
        erasures = {
            int(value.get("record_id", 0)): value
            for _, value in _lines(work / "erasures.jsonl", "erasures.jsonl", report)
        }
        report.erased = len(erasures)
        _verify_records(work / "records.jsonl", manifest, seals, erasures, report)
        _verify_checkpoints(work / "checkpoints.jsonl", seals, report)
    return report


def _verify_seals(
    path: Path, manifest: dict[str, Any], report: ArchiveReport
) -> dict[int, dict[str, Any]]:
    """The month's links: each hashes right and follows the one before it."""
    by_record: dict[int, dict[str, Any]] = {}
    previous: dict[int, dict[str, Any]] = {}
    seen: dict[int, set[int]] = {}
    hashes: dict[tuple[int, int], str] = {}
    starts = {
        (int(tenant_id), run["first"]): run["prev_hash"]
        for tenant_id, entry in manifest.get("tenants", {}).items()
        for run in entry.get("runs", [])
    }
    for number, seal in _lines(path, "seals.jsonl", report):
        try:
            tenant_id, seq = int(seal["tenant_id"]), int(seal["seq"])
            where = f"seals.jsonl line {number} (tenant {tenant_id}, link #{seq}, record {seal['record_id']})"
            if seal["hash"] != chain.link_hash(seal["prev_hash"], seq, seal["content_hash"]):
                report.add(f"{where}: the link's own hash is wrong (the seal was altered)")
            before = previous.get(tenant_id)
            if before is not None and before["seq"] == seq - 1:
                if seal["prev_hash"] != before["hash"]:
                    report.add(f"{where}: its previous-hash does not match the link before it")
            elif starts.get((tenant_id, seq)) != seal["prev_hash"]:
                report.add(f"{where}: it starts a run the manifest does not sign")
            previous[tenant_id] = seal
            seen.setdefault(tenant_id, set()).add(seq)
            hashes[(tenant_id, seq)] = seal["hash"]
            by_record[int(seal["record_id"])] = {**seal, "_line": number}
        except (KeyError, TypeError, ValueError):
            report.add(f"seals.jsonl line {number}: a field is missing or malformed")
    report.seals = sum(len(seqs) for seqs in seen.values())
    for tenant_id, entry in manifest.get("tenants", {}).items():
        expected = {
            seq for run in entry.get("runs", []) for seq in range(run["first"], run["last"] + 1)
        }
        got = seen.get(int(tenant_id), set())
        if missing := sorted(expected - got):
            report.add(f"seals.jsonl: tenant {tenant_id}'s links {_span(missing)} are missing")
        if extra := sorted(got - expected):
            report.add(
                f"seals.jsonl: tenant {tenant_id}'s links {_span(extra)} are not in the manifest"
            )
        for run in entry.get("runs", []):
            last = hashes.get((int(tenant_id), run["last"]))
            if last is not None and last != run["hash"]:
                report.add(
                    f"seals.jsonl: tenant {tenant_id}'s link #{run['last']} differs from the "
                    "manifest"
                )
    return by_record


def _span(seqs: list[int]) -> str:
    return f"#{seqs[0]}..#{seqs[-1]}" if len(seqs) > 1 else f"#{seqs[0]}"


def _verify_records(
    path: Path,
    manifest: dict[str, Any],
    seals: dict[int, dict[str, Any]],
    erasures: dict[int, dict[str, Any]],
    report: ArchiveReport,
) -> None:
    found: set[int] = set()
    for number, row in _lines(path, "records.jsonl", report):
        record_id = row.get("id")
        where = f"records.jsonl line {number} (record {record_id}, request {row.get('request_id', '?')})"
        if missing := [name for name in chain.RECORD_COLUMNS if name not in row]:
            report.add(f"{where}: fields missing ({', '.join(missing[:3])})")
            continue
        seal = seals.get(record_id) if isinstance(record_id, int) else None
        if seal is None or not isinstance(record_id, int):
            report.add(f"{where}: no seal in the archive names this record")
            continue
        found.add(record_id)
        report.records += 1
        erasure = erasures.get(record_id)
        if erasure is not None:
            if any(row[name] not in (None, []) for name in chain.PAYLOAD_FIELDS):
                report.add(
                    f"{where}: it has a payload although its erasure tombstone says it was removed"
                )
            if erasure.get("payload_hash") != seal["payload_hash"]:
                report.add(
                    f"{where}: its erasure tombstone names another payload than the one sealed"
                )
        elif chain.payload_hash(row) != seal["payload_hash"]:
            report.add(
                f"{where}: the payload (request, response or tool calls) differs from its seal"
            )
        try:
            content = chain.content_hash(row, seal["payload_hash"], int(seal["version"]))
        except ValueError as error:
            report.add(f"{where}: {error}")
            continue
        if content != seal["content_hash"]:
            report.add(f"{where}: the record's content differs from its seal (link #{seal['seq']})")
    for record_id, seal in seals.items():
        if record_id not in found:
            report.add(
                f"records.jsonl: record {record_id} (seals.jsonl line {seal['_line']}, link "
                f"#{seal['seq']}) is missing"
            )
    if report.records != manifest.get("record_count"):
        report.add(
            f"records.jsonl: {report.records} records verified, the manifest says "
            f"{manifest.get('record_count')}"
        )


def _verify_checkpoints(
    path: Path, seals: dict[int, dict[str, Any]], report: ArchiveReport
) -> None:
    links = {(int(s["tenant_id"]), int(s["seq"])): s["hash"] for s in seals.values()}
    for number, checkpoint in _lines(path, "checkpoints.jsonl", report):
        report.checkpoints += 1
        where = f"checkpoints.jsonl line {number}"
        message = {k: v for k, v in checkpoint.items() if k != "signature"}
        if not chain.signature_valid(message, str(checkpoint.get("signature", ""))):
            report.add(f"{where}: the checkpoint's signature does not match (it was altered)")
            continue
        link = links.get((int(checkpoint["tenant_id"]), int(checkpoint["seq"])))
        if link is not None and link != checkpoint["head_hash"]:
            report.add(f"{where}: link #{checkpoint['seq']} differs from this signed checkpoint")


# --- re-attaching an archived month, read-only ---------------------------------------------


def _reader(field_: models.Field[Any, Any]) -> Any:
    if isinstance(field_, models.JSONField):
        return lambda value: None if value is None else Jsonb(value)
    if isinstance(field_, models.DateTimeField):
        return lambda value: None if value is None else parse_datetime(value)
    if isinstance(field_, models.DecimalField):
        return lambda value: None if value is None else Decimal(value)
    return lambda value: value


def audit_month_attach(*, url: str) -> AuditMonth:
    """Put an archived (dropped) month back as a read-only partition, after verifying it: its
    records are searchable and verifiable again; nothing can be written to it."""
    if not partitioned():
        raise PartitionError("re-attaching a month needs the partitioned table (PostgreSQL)")
    report = archive_verify(url)
    if not report.ok:
        raise PartitionError(f"the archive does not verify: {report.problems[0]}")
    year, number = (int(part) for part in report.month.split("-"))
    month_day = date(year, number, 1)
    name = table_name(month_day)
    month = AuditMonth.objects.filter(month=month_day).first()
    if month is not None and month.state != MonthState.DROPPED:
        raise PartitionError(
            f"{report.month} is {month.state} here: only a dropped month is re-attached"
        )
    start, end = month_bounds(month_day)
    fields = list(AuditRecord._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    readers = [(f.attname, _reader(f)) for f in fields]
    store = open_store(url)
    with tempfile.TemporaryDirectory(prefix="audit-attach-") as folder:
        path = Path(folder) / "records.jsonl"
        store.fetch("records.jsonl", path)
        manifest = orjson.loads(_fetched(store, Path(folder)))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                "INCLUDING GENERATED)"
            )
            with (
                path.open("rb") as file,
                cursor.copy(f"COPY {name} ({columns}) FROM STDIN") as copy,
            ):
                for line in file:
                    row = orjson.loads(line)
                    copy.write_row([read(row[attname]) for attname, read in readers])
            # Read-only for good: every row change and TRUNCATE refused, whatever the flags.
            cursor.execute(
                f"CREATE TRIGGER audit_month_read_only BEFORE INSERT OR UPDATE OR DELETE ON {name} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            )
            cursor.execute(
                f"CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON {name} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
            )
            cursor.execute(
                f"ALTER TABLE {TABLE} ATTACH PARTITION {name} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
            month, _ = AuditMonth.objects.update_or_create(
                month=month_day,
                defaults={
                    "table": name,
                    "state": MonthState.ATTACHED,
                    "record_count": manifest["record_count"],
                    "last_record_id": manifest["last_record_id"],
                    "archive_url": store.url,
                },
            )
    return month


def _fetched(store: ArchiveStore, folder: Path) -> bytes:
    store.fetch(MANIFEST, folder / MANIFEST)
    return (folder / MANIFEST).read_bytes()


def audit_month_detach(*, month: AuditMonth) -> None:
    """Take a re-attached month away again (it stays in its archive)."""
    if month.state != MonthState.ATTACHED:
        raise PartitionError(f"{month.month:%Y-%m} is {month.state}, not re-attached")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {month.table}")
        cursor.execute(f"DROP TABLE {month.table}")
        month.state = MonthState.DROPPED
        month.save(update_fields=["state"])

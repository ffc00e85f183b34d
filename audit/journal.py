"""Write-ahead journal: no byte goes to a provider before the call is on disk (ADR 0010).

Each worker appends one line per provider call to a segment file of its own in
`GATEWAY_JOURNAL_DIR`, fsynced before the call is forwarded, by a thread of its own: the calls
that arrive while it writes share its next write and sync (group commit), and one callback on
the event loop releases them all. The line says who
called, on whose behalf, what, through which route, and what the call reserved. When the call's
final record is committed the line is done; a segment whose lines are all done is deleted.

A worker holds an exclusive lock on its segments for as long as it lives. A segment nobody holds
belongs to a worker that died: `recover_orphans` gives each of its calls that has no final record
one, with status `interrupted`, and returns the reservations to release (and to settle, for a
call recorded just before its worker died). Every worker runs it at
start-up and then periodically, so a crash is repaired by the next start on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from django.db import IntegrityError
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audit.entries import AuditEntry
from audit.models import AuditRecord, AuditSeal, AuditStatus

logger = logging.getLogger(__name__)

INTERRUPTED_MESSAGE = (
    "The gateway stopped while this call was in flight; the provider may have answered. "
    "Tokens and cost are those known when it stopped."
)


class JournalError(Exception):
    """The call could not be put on disk: it must not be forwarded."""


@dataclass(slots=True, eq=False)  # compared and hashed by identity
class _Segment:
    path: Path
    open_calls: set[str] = field(default_factory=set)
    fd: int | None = None  # opened (and locked) by the writer thread on its first write
    size: int = 0  # bytes of whole, synced lines: all the file may hold
    retired: bool = False
    # A write failed: the segment takes no more lines (after a failed sync the kernel may have
    # dropped the pages it could not write, so a later sync would succeed and mean nothing).
    broken: OSError | None = None

    def write(self, lines: list[bytes]) -> None:
        if self.broken is not None:
            raise OSError(f"the journal segment takes no more lines: {self.broken}")
        if self.fd is None:
            self.fd = _create_locked(self.path)
        elif os.fstat(self.fd).st_nlink == 0:
            # Deleted under us: a line written now could never be read.
            self.broken = OSError(f"the journal segment {self.path.name} was deleted")
            raise self.broken
        try:
            _write_all(self.fd, lines)
            os.fdatasync(self.fd)
        except OSError as error:
            self.broken = error
            # Cut a torn write back off: the file keeps only whole lines, so recovery reads
            # every line synced before it.
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise
        self.size += sum(len(line) for line in lines)

    def remove(self) -> None:
        # Unlink first, then close: the lock is held until the file is gone.
        try:
            self.path.unlink(missing_ok=True)
        finally:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


def _create_locked(path: Path) -> int:
    """A new segment, locked before it has the name recovery looks for: a sweep can never
    take a live worker's new segment for a dead one's (and delete it)."""
    path.parent.mkdir(parents=True, exist_ok=True)  # the directory may have been removed
    hidden = path.with_name(path.name + ".new")
    fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(hidden, path)
    except BaseException:
        os.close(fd)
        hidden.unlink(missing_ok=True)
        raise
    return fd


_LINE_FIELDS = tuple(f.name for f in fields(AuditEntry) if f.name != "completed_at")


def _jsonable(entry: AuditEntry) -> dict[str, Any]:
    # Shallow, not dataclasses.asdict: the line is serialised at once, and asdict's deep copy of
    # every body was most of the write-ahead's cost on the event loop (docs/perf/).
    line = {name: getattr(entry, name) for name in _LINE_FIELDS}
    line["started_at"] = entry.started_at.isoformat()
    line["cost_usd"] = str(entry.cost_usd)
    return line


class Journal:
    def __init__(self, directory: Path, *, segment_seconds: float = 60.0) -> None:
        self.directory = directory
        self.segment_seconds = segment_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-journal")
        # Lines waiting for the writer thread, each with the future its caller awaits.
        self._pending: list[tuple[_Segment, bytes, asyncio.Future[None]]] = []
        self._queued = threading.Condition()
        self._writer: threading.Thread | None = None
        self._segment: _Segment | None = None
        self._segment_started = 0.0
        self._calls: dict[str, _Segment] = {}
        self._closed = False

    async def begin(
        self, entry: AuditEntry, request_body: Any, release: dict[str, Any] | None
    ) -> None:
        """Put the call (and the body about to be sent) on disk; returns once it is durable.
        Raises JournalError."""
        line_entry = {**_jsonable(entry), "request_body": request_body}
        try:
            # One buffer per line, newline included: a large body is not copied again.
            line = orjson.dumps(
                {"entry": line_entry, "release": release}, option=orjson.OPT_APPEND_NEWLINE
            )
        except orjson.JSONEncodeError as error:  # nothing that cannot be recorded is forwarded
            raise JournalError(str(error)) from error
        if self._closed:  # the worker is stopping: nothing more goes to a provider
            raise JournalError("the journal is closed")
        segment = self._current_segment()
        segment.open_calls.add(entry.request_id)
        self._calls[entry.request_id] = segment
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._queued:
            self._pending.append((segment, line, future))
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_forever, name="audit-journal-writer", daemon=True
                )
                self._writer.start()
            self._queued.notify()
        try:
            await future
        except OSError as error:
            self.end(entry.request_id)
            raise JournalError(str(error)) from error

    def end(self, request_id: str) -> None:
        """The call's final record is committed: its line is no longer needed."""
        segment = self._calls.pop(request_id, None)
        if segment is None:
            return
        segment.open_calls.discard(request_id)
        if segment is not self._segment and not segment.open_calls:
            self._retire(segment)

    def close(self) -> None:
        """Shut down cleanly: segments with unfinished calls stay for recovery, unlocked, so
        that `recover_orphans` (this process's last step, or the next start) records them."""
        unfinished = []
        for segment in {self._segment, *self._calls.values()} - {None}:
            assert segment is not None
            if not segment.open_calls:
                self._retire(segment)
            else:
                unfinished.append(segment)
        self._closed = True
        with self._queued:
            writer, self._writer = self._writer, None
            self._queued.notify()
        if writer is not None:
            writer.join()
        self._executor.shutdown(wait=True)
        for segment in unfinished:
            if segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None

    def _current_segment(self) -> _Segment:
        now = time.monotonic()
        current = self._segment
        if current is None or current.broken or now - self._segment_started > self.segment_seconds:
            name = f"{os.getpid()}-{time.time_ns()}.jsonl"
            self._segment, self._segment_started = _Segment(self.directory / name), now
            if current is not None and not current.open_calls:
                self._retire(current)
        return self._segment  # type: ignore[return-value]

    def _retire(self, segment: _Segment) -> None:
        # After close() a segment stays: the next start finds its calls recorded and deletes it.
        if not segment.retired and not self._closed:
            segment.retired = True
            self._executor.submit(segment.remove)

    def _write_forever(self) -> None:
        """The writer thread: each batch written and synced at once, then released together by
        one callback on the event loop (two hand-offs between loop and thread, not four)."""
        while True:
            with self._queued:
                while not self._pending and self._writer is not None:
                    self._queued.wait()
                if not self._pending:
                    return  # closed, and nothing left
                batch, self._pending = self._pending, []
            error: OSError | None = None
            try:
                _write(batch)
            except Exception as failed:  # anything: a dead writer would leave every call waiting
                error = failed if isinstance(failed, OSError) else OSError(repr(failed))
            futures = [pending[2] for pending in batch]
            del batch  # whole request bodies: not kept until the next batch
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for future in futures:
                by_loop.setdefault(future.get_loop(), []).append(future)
            for loop, futures in by_loop.items():
                # A loop closed meanwhile has nobody waiting any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_release, futures, error)


def _release(futures: list[asyncio.Future[None]], error: OSError | None) -> None:
    for future in futures:
        if future.done():  # its caller went away
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _write(batch: list[tuple[_Segment, bytes, Any]]) -> None:
    by_segment: dict[int, tuple[_Segment, list[bytes]]] = {}
    for segment, line, _ in batch:
        by_segment.setdefault(id(segment), (segment, []))[1].append(line)
    for segment, lines in by_segment.values():
        segment.write(lines)


def _write_all(fd: int, lines: list[bytes]) -> None:
    """The lines in as few system calls as possible, without joining them into one more copy."""
    views = [memoryview(line) for line in lines]
    while views:
        written = os.writev(fd, views[:1024])  # IOV_MAX
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


# --- recovery ---------------------------------------------------------------------------------

_ENTRY_FIELDS = {f.name for f in fields(AuditEntry)}


def _entry(line: dict[str, Any]) -> AuditEntry:
    data = {k: v for k, v in line.items() if k in _ENTRY_FIELDS}
    data["started_at"] = datetime.fromisoformat(data["started_at"])
    data["cost_usd"] = Decimal(data.get("cost_usd") or 0)
    return AuditEntry(**data)


def _interrupted(entry: AuditEntry) -> AuditEntry:
    entry.status = AuditStatus.INTERRUPTED
    entry.http_status = None
    entry.error_type = "interrupted"
    entry.error_message = INTERRUPTED_MESSAGE
    entry.completed_at = timezone.now()
    entry.latency_ms = round((entry.completed_at - entry.started_at).total_seconds() * 1000, 3)
    return entry


def _orphans(directory: Path) -> list[tuple[Path, int]]:
    """Segments no living worker holds, each locked by us now (fd to close when done)."""
    found = []
    for path in sorted(directory.glob("*.jsonl.new")):  # a worker died while naming it: empty
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime < 60:  # being named now, by a live worker
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
            finally:
                os.close(fd)
    for path in sorted(directory.glob("*.jsonl")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # retired meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its worker is alive
            os.close(fd)
            continue
        found.append((path, fd))
    return found


def _read_lines(fd: int) -> list[dict[str, Any]]:
    with os.fdopen(os.dup(fd), "rb") as stream:
        raw = stream.read()
    lines = []
    for chunk in raw.split(b"\n"):
        if not chunk:
            continue
        try:
            lines.append(orjson.loads(chunk))
        except orjson.JSONDecodeError:
            # A torn line: a crash mid-append (never forwarded: begin() returns only once the
            # whole line is synced), or a failed write the journal could not cut back off, with
            # the next line glued to it. That one is read from where it starts.
            salvaged = _glued_line(chunk)
            if salvaged is not None:
                lines.append(salvaged)
            logger.warning("journal: skipped a torn line in a segment")
    return lines


def _glued_line(chunk: bytes) -> dict[str, Any] | None:
    start = chunk.find(b'{"entry":', 1)
    while start > 0:
        try:
            line = orjson.loads(chunk[start:])
        except orjson.JSONDecodeError:
            start = chunk.find(b'{"entry":', start + 1)
            continue
        return line if isinstance(line, dict) and isinstance(line.get("entry"), dict) else None
    return None


@dataclass(frozen=True, slots=True)
class Orphan:
    """A dead worker's call whose reservation is to be settled: `release`, what the call
    reserved (with nothing spent); `recorded_cost`, None if recovery recorded it (at $0), else
    the cost on the final record the worker committed before it died, perhaps without settling
    it (so that settlement may be a repeat)."""

    request_id: str
    release: dict[str, Any]
    recorded_cost: Decimal | None = None


def recover_orphans(directory: Path) -> list[Orphan]:
    """Give every call of a dead worker a final record; returns the reservations to settle.
    Synchronous (ORM): run it off the event loop."""
    releases: list[Orphan] = []
    for path, fd in _orphans(directory):
        try:
            _recover_segment(fd, releases)
            path.unlink(missing_ok=True)
        except Exception:  # this segment waits for the next sweep; the others go on
            logger.exception("journal: could not recover %s; retrying later", path.name)
        finally:
            os.close(fd)
    return releases


def _recover_segment(fd: int, releases: list[Orphan]) -> None:
    """Record a dead worker's segment's unrecorded calls; each one's reservation goes to
    `releases` as soon as it is settled (recorded, or known never to be)."""
    from audit.storable import storable_entry
    from audit.writer import _Complete, _Insert, failed_write_reason, write_batch

    lines = _read_lines(fd)
    ids = [line["entry"]["request_id"] for line in lines]
    records = AuditRecord.objects.filter(request_id__in=ids).annotate(
        sealed=Exists(AuditSeal.objects.filter(record_id=OuterRef("id")))
    )
    known = {
        request_id: (status, cost, sealed)
        for request_id, status, cost, sealed in records.values_list(
            "request_id", "status", "cost_usd", "sealed"
        )
    }
    for line in lines:
        entry = _interrupted(_entry(line["entry"]))
        status, cost, sealed = known.get(entry.request_id, (None, None, False))
        if status is not None and status != AuditStatus.IN_PROGRESS:
            # Its final record was committed before the crash; its settlement may not have
            # been made: a reservation still held is settled at the recorded cost.
            if line.get("release"):
                releases.append(Orphan(entry.request_id, line["release"], cost or Decimal(0)))
            continue
        if sealed:
            # A stream's start record the sealer chained as abandoned (its worker was gone for
            # longer than AUDIT_ABANDONED_STREAM_SECONDS): it stays as sealed, never completed,
            # and must not hold up the other calls of the segment.
            logger.error("journal: call %s was sealed unfinished; left so", entry.request_id)
            if line.get("release"):
                releases.append(Orphan(entry.request_id, line["release"]))
            continue
        stored = storable_entry(entry)
        op = _Insert(stored) if status is None else _Complete(stored, interrupted=True)
        try:
            write_batch([op])
            logger.warning("journal: call %s recorded as interrupted", entry.request_id)
        except IntegrityError as error:  # its tenant or key was deleted since: never recordable
            logger.error(
                "journal: call %s cannot be recorded (%s)",
                entry.request_id,
                failed_write_reason(error),
            )
        if line.get("release"):
            releases.append(Orphan(entry.request_id, line["release"]))

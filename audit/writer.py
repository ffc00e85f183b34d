"""Group commit of audit records: the client is answered only after its record is committed.

Requests hand their record to one writer per event loop and wait. The writer commits everything
that queued up while the previous transaction ran in one transaction (leader/follower group
commit), so at low load a record is written at once and under load many share one commit.

On PostgreSQL a batch is written from the event loop on the writer's own async connection: no
thread hand-off on the way there or back. A batch's new records (what requests wait for) are one
statement, its stream completions another. Everything else (a recovery's
completions, a tenant's content mode to look up, SQLite, a lost connection) runs on one dedicated
thread with Django's connection: Python work there competes with the loop for the GIL.

When the database is unreachable the writer says so at once (`available()` is False, and every
record handed to it fails without waiting on a dead connection) and probes the database twice a
second; it is available again as soon as the database answers. A record the writer owes a call
that already reached the provider is kept (`defer`) and written first when the database is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from django.db import close_old_connections, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import DatabaseError, InterfaceError, OperationalError
from psycopg_pool import PoolTimeout

from audit.content import ContentModes, apply_content_mode
from audit.entries import AuditEntry
from audit.models import AuditRecord
from audit.sql import (
    complete_entries,
    completion_statement,
    insert_entries,
    insert_entries_with,
    insert_statement,
)
from audit.storable import storable_entry
from gateway_site.log_format import database_error_summary

logger = logging.getLogger(__name__)

# Errors that say the database cannot be reached, not that a record is bad.
OUTAGE_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, PoolTimeout)
PROBE_EVERY_S = 0.5
_PROBE_CONNECT_TIMEOUT_S = 2
# Records owed to calls the provider saw, kept while the database is down; past this many the
# oldest wait for the write-ahead journal's recovery instead (it records them when the worker ends).
OWED_MAX = 100_000


class SpendLedger(Protocol):
    """Where the spend of a written record goes, in the record's own transaction (the quotas
    app's ledger, tenants/quotas/ledger.py, registers itself: the audit room stays below it)."""

    def spend_rows(
        self, connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry]
    ) -> tuple[str, list[tuple[Any, ...]]] | None: ...

    def insert_spend(
        self, connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry]
    ) -> None: ...


class _NoLedger:
    def spend_rows(
        self, connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry]
    ) -> tuple[str, list[tuple[Any, ...]]] | None:
        return None

    def insert_spend(self, connection: BaseDatabaseWrapper, entries: Sequence[AuditEntry]) -> None:
        return None


_ledger: SpendLedger = _NoLedger()


def use_ledger(ledger: SpendLedger) -> None:
    """Called once from the quotas app's `ready()`."""
    global _ledger
    _ledger = ledger


@dataclass(frozen=True, slots=True)
class _Insert:
    entry: AuditEntry


@dataclass(frozen=True, slots=True)
class _Complete:
    entry: AuditEntry
    interrupted: bool = False  # a recovery's: what the start record holds is kept


_Op = _Insert | _Complete


LARGE_STATEMENT_BYTES = 8 * 1024 * 1024


def _large(params: list[Any]) -> bool:
    return sum(len(p) for p in params if isinstance(p, str | bytes)) > LARGE_STATEMENT_BYTES


def write_batch(ops: list[_Op], content_modes: ContentModes | None = None) -> None:
    """Write a batch in one transaction (inserts first, so a short stream can complete in it).

    Each record is first reduced to what its tenant keeps of prompts and responses.
    """
    try:
        modes = (content_modes or ContentModes()).modes(op.entry.tenant_id for op in ops)
        kept = [(op, apply_content_mode(op.entry, modes[op.entry.tenant_id])) for op in ops]
        if connection.vendor == "postgresql" and all(isinstance(op, _Insert) for op in ops):
            # What requests wait for: inserts only (completions come after a stream has been
            # delivered). One statement, records and ledger rows together, one round trip.
            inserts = [entry for _, entry in kept]
            insert_entries_with(connection, inserts, _ledger.spend_rows(connection, inserts))
            return
        with transaction.atomic():
            inserts = [entry for op, entry in kept if isinstance(op, _Insert)]
            if inserts:
                insert_entries(connection, inserts)
            completions: dict[bool, list[AuditEntry]] = {}
            for op, entry in kept:
                if isinstance(op, _Complete):
                    completions.setdefault(op.interrupted, []).append(entry)
            for interrupted, completed in completions.items():
                complete_entries(connection, completed, interrupted=interrupted)
            # The spend ledger gets its rows in the same transaction as the records they charge.
            _ledger.insert_spend(connection, inserts + [e for c in completions.values() for e in c])
    finally:
        close_old_connections()


class _LoopConnection:
    """The writer's own psycopg connection on the event loop (autocommit, prepared statements)."""

    RETRY_AFTER_S = 5.0  # after a failure, the thread path alone for this long

    def __init__(self) -> None:
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._resting_until = 0.0

    def usable(self) -> bool:
        return connection.vendor == "postgresql" and time.monotonic() >= self._resting_until

    async def insert(self, entries: list[AuditEntry]) -> None:
        """New records and their ledger rows: one statement, one round trip, one commit."""
        also = _ledger.spend_rows(connection, entries)
        await self._execute(*insert_statement(connection, entries, also, numbered=True))

    async def complete(self, entries: list[AuditEntry]) -> None:
        """Stream completions and their ledger rows: one statement too."""
        also = _ledger.spend_rows(connection, entries)
        await self._execute(*completion_statement(connection, entries, also))

    async def _execute(self, statement: str, params: list[Any]) -> None:
        try:
            conn = self._conn
            if conn is None or conn.closed:
                conn = self._conn = await self._connect()
            await conn.execute(statement, params)
        except BaseException:
            self._resting_until = time.monotonic() + self.RETRY_AFTER_S
            await self.aclose()
            raise
        if _large(params):
            # libpq keeps its buffers as large as the largest statement it sent: after records
            # of large bodies, a new connection gives that memory back.
            await self.aclose()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        params = connections["default"].get_connection_params()
        # Django's cursor binds parameters client-side; this connection binds them on the server.
        params.pop("cursor_factory", None)
        params["prepare_threshold"] = 5  # a batch size seen 5 times is prepared once, then reused
        # `$n` placeholders, sent as they are (sql.insert_statement, numbered=True).
        return await psycopg.AsyncConnection.connect(
            autocommit=True, cursor_factory=psycopg.AsyncRawCursor, **params
        )

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()


def _select_one(params: dict[str, Any]) -> None:
    with psycopg.connect(autocommit=True, **params) as probe:
        probe.execute("SELECT 1")


def is_outage(error: BaseException) -> bool:
    """Whether a failed write says the database is unreachable (not that one record is bad)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OUTAGE_ERRORS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(frozen=True, slots=True)
class _Owed:
    op: _Op
    on_written: Callable[[], None]


class AuditWriter:
    def __init__(self, batch_max: int = 256) -> None:
        self.batch_max = batch_max
        self._pending: list[tuple[_Op, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._content_modes = ContentModes()
        self._loop_connection = _LoopConnection()
        self._outage: str | None = None  # why the database is unreachable, while it is
        self._probe: asyncio.Task[None] | None = None
        self._owed: list[_Owed] = []

    # Each record is queued in the form PostgreSQL can store (NUL, lone surrogates escaped), so
    # every path below, and the ledger row beside it, writes what can be written.
    async def insert(self, entry: AuditEntry) -> None:
        await self._submit(_Insert(storable_entry(entry)))

    async def complete(self, entry: AuditEntry) -> None:
        await self._submit(_Complete(storable_entry(entry)))

    async def defer(self, entry: AuditEntry, *, on_written: Callable[[], None]) -> None:
        """Write this record as soon as the database takes it, then call `on_written`: the
        record of a call the provider saw, which could not be written when it ended."""
        await self._owe(_Owed(_Insert(storable_entry(entry)), on_written))

    async def defer_completion(self, entry: AuditEntry, *, on_written: Callable[[], None]) -> None:
        await self._owe(_Owed(_Complete(storable_entry(entry)), on_written))

    async def _owe(self, owed: _Owed) -> None:
        if len(self._owed) >= OWED_MAX:
            dropped = self._owed.pop(0)
            logger.error(
                "audit record %s left to the journal's recovery", dropped.op.entry.request_id
            )
        self._owed.append(owed)
        if self._outage is None:
            await self._pay_owed()  # the database came back meanwhile

    def backlog(self) -> int:
        """Records waiting to be written: queued for the next batch, or owed (for /readyz)."""
        return len(self._pending) + len(self._owed)

    def available(self) -> bool:
        """False while the database is known to be unreachable: nothing can be recorded."""
        return self._outage is None

    def outage(self) -> str | None:
        """Why records cannot be written now, and how many are owed (for /readyz)."""
        if self._outage is None:
            return None
        return f"{self._outage}; {len(self._owed)} record(s) owed"

    def database_failed(self, error: BaseException) -> None:
        """The database is unreachable (seen by the writer, or by anyone on the hot path): fail
        records at once until a probe gets an answer."""
        if connection.vendor != "postgresql":
            return  # SQLite (development): a locked file is not an outage
        if self._outage is None:
            logger.error("audit: database unreachable (%s); refusing until it answers", error)
        self._outage = f"database unreachable: {type(error).__name__}: {error}"[:300]
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY_S)
            if not await self._reachable():
                continue
            logger.warning(
                "audit: database answers again; writing %d owed record(s)", len(self._owed)
            )
            self._outage = None
            await self._pay_owed()
            if self._outage is None:
                return
            # Down again while paying: `database_failed` saw this probe running and started no
            # other, so this one goes on (else every record would be refused until a restart).

    async def _reachable(self) -> bool:
        """A direct connection, not the pool (whose reconnection backs off for ever longer)."""
        params = connections["default"].get_connection_params()
        params.pop("cursor_factory", None)
        params["connect_timeout"] = _PROBE_CONNECT_TIMEOUT_S
        try:
            # On a thread: whatever libpq does while a server starts up, the event loop (and
            # every request refused on it meanwhile) must not wait for it.
            await asyncio.to_thread(_select_one, params)
        except Exception as error:
            if self._outage is not None:
                self._outage = f"database unreachable: {type(error).__name__}: {error}"[:300]
            return False
        return True

    async def _pay_owed(self) -> None:
        owed, self._owed = self._owed, []
        if not owed:
            return
        results = await asyncio.gather(
            *(self._submit(item.op) for item in owed), return_exceptions=True
        )
        for item, result in zip(owed, results, strict=True):
            if isinstance(result, BaseException):
                self._owed.append(item)  # down again: the next probe's success retries it
            else:
                item.on_written()

    def alive(self) -> bool:
        """Whether records can still be written: not closed, its loop task not dead (/readyz)."""
        task = self._task
        died = task is not None and task.done() and not task.cancelled() and task.exception()
        return not self._closed and not died

    async def aclose(self) -> None:
        """Close the loop's connection, then the thread and its connection."""
        if self._probe is not None:
            self._probe.cancel()
        await self._loop_connection.aclose()
        self.close()

    def close(self) -> None:
        """Stop the writer thread once its queue is empty, closing its database connection."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        self._executor.submit(connections.close_all)
        self._executor.shutdown(wait=True)

    async def _submit(self, op: _Op) -> None:
        if self._outage is not None:
            # Nobody waits on a dead connection: the caller answers 503 at once.
            raise AuditWriteError(op.entry.request_id)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((op, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._write_pending()

    async def _write_pending(self) -> None:
        # A frame of its own: the last batch (whole request bodies, up to the size limit each)
        # dies with it instead of waiting in `_run` for the next wake-up.
        loop = asyncio.get_running_loop()
        while self._pending:
            batch = self._pending[: self.batch_max]
            del self._pending[: self.batch_max]
            await self._write(loop, batch)

    async def _write(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[_Op, asyncio.Future[None]]]
    ) -> None:
        batch = await self._write_on_loop(batch)
        if not batch:
            return
        if self._outage is not None:
            _settle(batch, error=True)
            return
        try:
            await loop.run_in_executor(
                self._executor, write_batch, [op for op, _ in batch], self._content_modes
            )
        except Exception as error:
            if is_outage(error) and connection.vendor == "postgresql":
                # Unreachable, not a bad row: retrying each record alone would only wait longer.
                self.database_failed(error)
                _settle(batch, error=True)
                return
            if len(batch) == 1:
                if await loop.run_in_executor(self._executor, _already_written, batch[0][0]):
                    # A retry of a write that committed (its answer was lost with its
                    # connection): refused now, a recorded and charged call would answer 503
                    # and be owed for ever.
                    _settle(batch, error=False)
                    return
                logger.error(
                    "audit record %s could not be written (%s)",
                    batch[0][0].entry.request_id,
                    failed_write_reason(error),
                )
                _settle(batch, error=True)
                return
            # One bad record must not fail its neighbours: retry them one by one.
            for item in batch:
                await self._write(loop, [item])
            return
        _settle(batch, error=False)

    async def _write_on_loop(
        self, batch: list[tuple[_Op, asyncio.Future[None]]]
    ) -> list[tuple[_Op, asyncio.Future[None]]]:
        """Write a batch from the loop: its new records in one statement, then its stream
        completions in another. Returns what is left for the thread (everything on SQLite, with
        a recovery's completions, or while content modes are not cached; what failed)."""
        if not self._loop_connection.usable() or any(
            isinstance(op, _Complete) and op.interrupted for op, _ in batch
        ):
            return batch
        modes = self._content_modes.cached(op.entry.tenant_id for op, _ in batch)
        if modes is None:
            return batch  # the thread looks the modes up, and the next batch comes this way
        # Inserts first: a record inserted late (its start failed) may be completed in this batch.
        inserts = [item for item in batch if isinstance(item[0], _Insert)]
        completions = [item for item in batch if isinstance(item[0], _Complete)]
        loop_connection = self._loop_connection
        for part, write in (
            (inserts, loop_connection.insert),
            (completions, loop_connection.complete),
        ):
            if not part:
                continue
            try:
                await write(
                    [apply_content_mode(op.entry, modes[op.entry.tenant_id]) for op, _ in part]
                )
            except Exception as error:
                if is_outage(error) and not await self._reachable():
                    self.database_failed(error)  # the thread path would wait on the pool in vain
                # A bad record or a lost connection: the thread path retries, one by one if need be.
                logger.warning(
                    "audit batch of %d not written from the loop (%s); retrying",
                    len(part),
                    failed_write_reason(error),
                )
                return completions if part is completions else batch
            _settle(part, error=False)
        return []


def _already_written(op: _Op) -> bool:
    """Whether the database holds this very record as `op` writes it (its id, start, status and
    cost; a request id is the gateway's own, never reused): a second, different completion of a
    stream is still refused."""
    entry = op.entry
    try:
        return AuditRecord.objects.filter(
            request_id=entry.request_id,
            started_at=entry.started_at,
            status=entry.status,
            cost_usd=entry.cost_usd,
        ).exists()
    except DatabaseError:
        return False
    finally:
        close_old_connections()


def failed_write_reason(error: BaseException) -> str:
    """What a failed write says, without the row: PostgreSQL's DETAIL of a refused row quotes
    its values (prompts, answers), which stay out of the logs."""
    return database_error_summary(error) or type(error).__name__


def _settle(batch: list[tuple[_Op, asyncio.Future[Any]]], *, error: bool) -> None:
    for op, future in batch:
        if future.done():
            continue
        if error:
            future.set_exception(AuditWriteError(op.entry.request_id))
        else:
            future.set_result(None)


class AuditWriteError(Exception):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"the audit record of {request_id} could not be committed")
        self.request_id = request_id

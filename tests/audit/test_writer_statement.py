"""The audit writer: a record and its ledger row in one statement, written together or not at all;
from the event loop when it can, from its thread when it must, and nothing lost in between."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from audit.entries import AuditEntry
from audit.models import AuditRecord, AuditStatus
from audit.sql import insert_entries_with
from audit.writer import AuditWriteError, AuditWriter
from tenants.models import ApiKey
from tenants.quotas.ledger import spend_rows
from tenants.quotas.models import SpendEntry
from tests.support.memory import holders_of, released

pytestmark = [pytest.mark.django_db]


def _entry(world, request_id: str, cost: str) -> AuditEntry:
    key = ApiKey.objects.filter(team=world.team).first()
    return AuditEntry(
        request_id=request_id,
        tenant_id=world.team.tenant_id,
        team_id=world.team.pk,
        api_key_id=key.pk,
        endpoint="chat.completions",
        started_at=timezone.now(),
        status=AuditStatus.SUCCESS,
        cost_usd=Decimal(cost),
    )


def _write(entries: list[AuditEntry]) -> None:
    insert_entries_with(connection, entries, spend_rows(connection, entries))


def test_records_and_their_charges_land_together(world) -> None:
    first, second = (f"req_{uuid.uuid4().hex}" for _ in range(2))

    _write([_entry(world, first, "0.25"), _entry(world, second, "0")])

    assert AuditRecord.objects.filter(request_id__in=[first, second]).count() == 2
    # Only what costs something is charged.
    assert list(
        SpendEntry.objects.filter(request_id__in=[first, second]).values_list(
            "request_id", "amount_usd"
        )
    ) == [(first, Decimal("0.25"))]


def test_a_record_that_cannot_be_written_leaves_no_charge_behind(world) -> None:
    taken, fresh = f"req_{uuid.uuid4().hex}", f"req_{uuid.uuid4().hex}"
    _write([_entry(world, taken, "0.10")])

    with pytest.raises(IntegrityError), transaction.atomic():
        _write([_entry(world, fresh, "0.40"), _entry(world, taken, "0.10")])

    assert not AuditRecord.objects.filter(request_id=fresh).exists()
    assert not SpendEntry.objects.filter(request_id=fresh).exists()
    assert SpendEntry.objects.filter(request_id=taken).count() == 1


# --- the writer itself: from the event loop when it can, from its thread when it must --------


@pytest.fixture
async def shared_thread_closed():
    """The ORM calls below run on asgiref's shared thread: close its connection afterwards."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def make(world):
    """Entries for the writer, built without the ORM (the tests run on the event loop)."""
    key = ApiKey.objects.filter(team=world.team).first()

    def entry(cost: str = "0.01") -> AuditEntry:
        return AuditEntry(
            request_id=f"req_{uuid.uuid4().hex}",
            tenant_id=world.team.tenant_id,
            team_id=world.team.pk,
            api_key_id=key.pk,
            endpoint="chat.completions",
            started_at=timezone.now(),
            status=AuditStatus.SUCCESS,
            cost_usd=Decimal(cost),
        )

    return entry


async def test_new_records_are_written_from_the_loop_and_a_bad_one_fails_alone(
    make, shared_thread_closed
) -> None:
    from asgiref.sync import sync_to_async

    writer = AuditWriter()
    try:
        warm = make()
        await writer.insert(warm)  # the thread looks the tenant's content mode up
        taken = make()
        await writer.insert(taken)
        assert writer._loop_connection._conn is not None  # the second came from the loop

        # A batch with a record that cannot be written: the others still are.
        good, duplicate = make(), make()
        duplicate.request_id = taken.request_id
        results = await asyncio.gather(
            writer.insert(good), writer.insert(duplicate), return_exceptions=True
        )
    finally:
        await writer.aclose()

    assert results[0] is None and isinstance(results[1], AuditWriteError)
    written = await sync_to_async(
        lambda: set(
            AuditRecord.objects.filter(
                request_id__in=[warm.request_id, taken.request_id, good.request_id]
            ).values_list("request_id", flat=True)
        )
    )()
    assert written == {warm.request_id, taken.request_id, good.request_id}


async def test_a_lost_loop_connection_falls_back_to_the_thread_and_nothing_is_lost(
    make, shared_thread_closed
) -> None:
    from asgiref.sync import sync_to_async

    writer = AuditWriter()
    try:
        await writer.insert(make())
        await writer.insert(make())
        conn = writer._loop_connection._conn
        assert conn is not None
        # The server drops the writer's connection (a restart, a failover, an idle timeout).
        await sync_to_async(_terminate_backend)(conn.info.backend_pid)
        after = make()
        await writer.insert(after)
    finally:
        await writer.aclose()

    assert await sync_to_async(
        lambda: AuditRecord.objects.filter(request_id=after.request_id).exists()
    )()
    assert (
        await sync_to_async(
            lambda: SpendEntry.objects.filter(request_id=after.request_id).count()
        )()
        == 1
    )


async def test_a_record_whose_commit_answer_was_lost_is_written_not_refused(
    make, shared_thread_closed, monkeypatch
) -> None:
    # The statement committed, then the connection died before its answer came back; the
    # database answers again at once. The writer's retry finds the record: it is written (it was
    # refused, the client got 503 for an answer recorded and charged, and the record was owed
    # for ever, its reservation held).
    import psycopg
    from asgiref.sync import sync_to_async

    from audit.writer import _LoopConnection

    writer = AuditWriter()
    real_insert = _LoopConnection.insert

    async def answer_lost(self, entries):
        await real_insert(self, entries)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    async def reachable() -> bool:
        return True

    monkeypatch.setattr(writer, "_reachable", reachable)
    try:
        await writer.insert(make())  # the thread looks the tenant's content mode up
        monkeypatch.setattr(_LoopConnection, "insert", answer_lost)
        lost = make()
        await writer.insert(lost)
    finally:
        await writer.aclose()

    assert (
        await sync_to_async(lambda: SpendEntry.objects.filter(request_id=lost.request_id).count())()
        == 1
    )


def _terminate_backend(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


async def test_a_written_record_is_let_go(make, shared_thread_closed) -> None:
    """A record carries the whole request body: once written, the writer keeps none of it (it
    kept its last batch until the next one, which after a burst of large bodies was for good)."""
    writer = AuditWriter()
    marker = f"body-{uuid.uuid4().hex}"
    try:
        for _ in range(2):  # the first from the thread, the second from the loop
            entry = make()
            entry.request_body = {"messages": [{"role": "user", "content": marker + " x" * 1000}]}
            await writer.insert(entry)
            del entry
            assert await released(marker), holders_of(marker)
    finally:
        await writer.aclose()


# --- stream completions: from the loop too, in one statement with their ledger rows -------------


SSN = "078-05-1120"


def _started(entry: AuditEntry) -> AuditEntry:
    entry.status, entry.cost_usd = AuditStatus.IN_PROGRESS, Decimal(0)
    return entry


def _completed(entry: AuditEntry, cost: str, **changes: object) -> AuditEntry:
    done = dataclasses.replace(
        entry,
        status=AuditStatus.SUCCESS,
        http_status=200,
        cost_usd=Decimal(cost),
        prompt_tokens=12,
        completion_tokens=34,
        response_body={"choices": [{"message": {"content": "done \u0000 here"}}]},
        completed_at=timezone.now(),
    )
    for name, value in changes.items():
        setattr(done, name, value)
    return done


def _stored(request_ids: list[str]) -> dict[str, tuple[str, int, Decimal, int]]:
    records = AuditRecord.objects.filter(request_id__in=request_ids)
    charged = dict(
        SpendEntry.objects.filter(request_id__in=request_ids)
        .values_list("request_id")
        .annotate(n=Count("id"))
        .values_list("request_id", "n")
    )
    return {
        r.request_id: (r.status, r.completion_tokens, r.cost_usd, charged.get(r.request_id, 0))
        for r in records
    }


async def test_stream_completions_are_written_from_the_loop_with_their_charge(
    make, shared_thread_closed, monkeypatch
) -> None:
    from asgiref.sync import sync_to_async

    writer = AuditWriter()
    try:
        await writer.insert(make())  # the thread looks the tenant's content mode up
        one, two = _started(make()), _started(make())
        await asyncio.gather(writer.insert(one), writer.insert(two))

        def no_thread(*args: object, **kwargs: object) -> None:
            raise AssertionError("written on the writer's thread")

        monkeypatch.setattr("audit.writer.write_batch", no_thread)
        # Two completions and a new record queued together: one batch, all from the loop.
        fresh = make("0.02")
        await asyncio.gather(
            writer.complete(_completed(one, "0.30")),
            writer.complete(_completed(two, "0")),
            writer.insert(fresh),
        )
    finally:
        await writer.aclose()

    ids = [one.request_id, two.request_id, fresh.request_id]
    assert await sync_to_async(_stored)(ids) == {
        one.request_id: ("success", 34, Decimal("0.30"), 1),
        two.request_id: ("success", 34, Decimal("0"), 0),
        fresh.request_id: ("success", 0, Decimal("0.02"), 1),
    }
    body = await sync_to_async(
        lambda: AuditRecord.objects.get(request_id=one.request_id).response_body
    )()
    assert "done" in str(body)  # the NUL is stored escaped, the answer kept


async def test_a_completion_that_cannot_be_written_fails_alone_and_its_batch_is_written_once(
    make, shared_thread_closed, caplog
) -> None:
    from asgiref.sync import sync_to_async

    writer = AuditWriter()
    try:
        await writer.insert(make())
        good, bad = _started(make()), _started(make())
        await asyncio.gather(writer.insert(good), writer.insert(bad))
        fresh = make("0.05")
        results = await asyncio.gather(
            writer.insert(fresh),
            writer.complete(_completed(good, "0.10")),
            writer.complete(  # breaks a CHECK; PostgreSQL's DETAIL would quote the answer
                _completed(bad, "0.10", prompt_tokens=-1, response_body={"ssn": SSN})
            ),
            return_exceptions=True,
        )
        # A stream is completed once: completing it again is refused, and charges nothing.
        again = await asyncio.gather(
            writer.complete(_completed(good, "9.99", completion_tokens=999)),
            return_exceptions=True,
        )
    finally:
        await writer.aclose()

    assert results[:2] == [None, None] and isinstance(results[2], AuditWriteError)
    assert isinstance(again[0], AuditWriteError)
    logged = caplog.text
    assert bad.request_id in logged and "check constraint" in logged
    assert SSN not in logged  # the refused row's values stay out of the logs
    ids = [fresh.request_id, good.request_id, bad.request_id]
    assert await sync_to_async(_stored)(ids) == {
        fresh.request_id: ("success", 0, Decimal("0.05"), 1),
        good.request_id: ("success", 34, Decimal("0.10"), 1),
        bad.request_id: ("in_progress", 0, Decimal("0"), 0),
    }

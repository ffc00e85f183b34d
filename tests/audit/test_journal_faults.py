"""The write-ahead journal under faults: a disk that fills up, a sweep racing a new segment, a
journal directory removed under a running worker, a dead worker's segment that cannot be
recorded. Each time, every line a call was forwarded on stays readable."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from audit import journal as journal_module
from audit.journal import (
    Journal,
    JournalError,
    Orphan,
    _jsonable,
    _orphans,
    _read_lines,
    recover_orphans,
)
from audit.models import AuditRecord, AuditStatus
from tenants.quotas.core.checks import BudgetCheck, ConcurrencyCheck, Release
from tenants.quotas.core.redis_store import RedisQuotaStore
from tests.audit.test_journal import _entry
from tests.support.world import World


def _calls_on_disk(directory: Path) -> dict[str, list[str]]:
    """The request ids each segment holds, read as recovery reads them."""
    found = {}
    for path in sorted(directory.glob("*.jsonl")):
        fd = os.open(path, os.O_RDONLY)
        try:
            found[path.name] = [line["entry"]["request_id"] for line in _read_lines(fd)]
        finally:
            os.close(fd)
    return found


def test_a_write_the_disk_refuses_is_cut_back_off_and_the_next_call_gets_a_new_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = journal_module._write_all
    full = [True]

    def disk_full_midway(fd: int, lines: list[bytes]) -> None:
        if full[0]:
            os.write(fd, lines[0][: len(lines[0]) // 2])  # the line torn where the disk filled
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, lines)

    async def scenario() -> tuple[str, str, str, bool]:
        journal = Journal(tmp_path)
        before, refused, after = _entry(), _entry(), _entry()
        await journal.begin(before, {"n": 1}, None)
        monkeypatch.setattr(journal_module, "_write_all", disk_full_midway)
        with pytest.raises(JournalError, match="No space left"):
            await journal.begin(refused, {"n": 2}, None)
        full[0] = False  # space freed
        await journal.begin(after, {"n": 3}, None)
        journal.close()  # both calls unfinished: their lines stay for recovery
        return before.request_id, refused.request_id, after.request_id, True

    before, _, after, _ = asyncio.run(scenario())

    on_disk = _calls_on_disk(tmp_path)
    # Every line a call was forwarded on is whole and readable; the refused call's is gone.
    assert sorted(on_disk.values()) == sorted([[before], [after]])


def test_a_line_glued_to_a_torn_one_is_still_read(tmp_path: Path) -> None:
    entry = _entry()
    line = orjson.dumps({"entry": {**_jsonable(entry), "request_body": {}}, "release": None})
    path = tmp_path / "3-3.jsonl"
    path.write_bytes(b'{"entry": {"request_id": "req_torn", "nested": {"entry": 1' + line + b"\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        lines = _read_lines(fd)
    finally:
        os.close(fd)
    assert [found["entry"]["request_id"] for found in lines] == [entry.request_id]


def test_a_sweep_never_takes_a_live_workers_new_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep (another worker's) that looks between the segment's creation and its lock."""
    real_flock = fcntl.flock
    sweeping: list[Any] = []

    def sweep_first(fd: int, operation: int) -> None:
        if not sweeping:
            sweeping.append(None)
            sweeping.append(_orphans(tmp_path))
        real_flock(fd, operation)

    monkeypatch.setattr(journal_module.fcntl, "flock", sweep_first)

    async def scenario() -> str:
        journal = Journal(tmp_path)
        entry = _entry()
        await journal.begin(entry, {}, None)
        monkeypatch.setattr(journal_module.fcntl, "flock", real_flock)
        journal.close()
        return entry.request_id

    request_id = asyncio.run(scenario())

    taken = sweeping[1]
    for _, fd in taken:
        os.close(fd)
    assert taken == []  # the sweep saw no segment to take
    assert list(_calls_on_disk(tmp_path).values()) == [[request_id]]


def test_a_journal_directory_removed_under_the_worker_refuses_one_call_then_comes_back(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journal"
    directory.mkdir()

    async def scenario() -> tuple[str, str]:
        journal = Journal(directory)
        first, lost, later = _entry(), _entry(), _entry()
        await journal.begin(first, {}, None)
        shutil.rmtree(directory)
        # Its segment is gone: a line written there could never be recovered.
        with pytest.raises(JournalError, match="was deleted"):
            await journal.begin(lost, {}, None)
        await journal.begin(later, {}, None)
        journal.close()
        return first.request_id, later.request_id

    _, later = asyncio.run(scenario())

    assert list(_calls_on_disk(directory).values()) == [[later]]


@pytest.mark.django_db
def test_recovery_goes_on_past_a_segment_it_cannot_record_and_releases_what_it_cannot(
    tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit import writer

    failing, fine = _entry(world), _entry(world)
    orphaned = _entry(world)
    orphaned.tenant_id = 2_000_000_000  # its tenant was deleted since: never recordable
    release = {"window_adjustments": [], "concurrency_keys": ["k:conc"], "budget_spend": []}
    for name, entry in (("1-1.jsonl", failing), ("2-2.jsonl", fine), ("3-3.jsonl", orphaned)):
        line = {"entry": {**_jsonable(entry), "request_body": {}}, "release": release}
        (tmp_path / name).write_bytes(orjson.dumps(line) + b"\n")
    real_write = writer.write_batch

    def database_blip(ops: Any) -> None:
        if ops[0].entry.request_id == failing.request_id:
            raise RuntimeError("the database went away")
        real_write(ops)

    monkeypatch.setattr(writer, "write_batch", database_blip)
    with ThreadPoolExecutor(1) as pool:
        releases = pool.submit(recover_orphans, tmp_path).result()

    assert AuditRecord.objects.get(request_id=fine.request_id).status == AuditStatus.INTERRUPTED
    assert not AuditRecord.objects.filter(request_id=failing.request_id).exists()
    assert (tmp_path / "1-1.jsonl").exists()  # left for the next sweep
    assert not (tmp_path / "2-2.jsonl").exists() and not (tmp_path / "3-3.jsonl").exists()
    assert sorted(o.request_id for o in releases) == sorted([fine.request_id, orphaned.request_id])


@pytest.mark.django_db
def test_a_call_recorded_just_before_its_worker_died_is_settled_once_at_its_recorded_cost(
    tmp_path: Path, world: World
) -> None:
    # Its worker committed the final record, then died before (or just after) settling it:
    # either way recovery frees the lease and the reservation and charges the cost once.
    from audit.storable import storable_entry
    from audit.writer import _Insert, write_batch
    from routing.runtime import _settlement

    budget, lease = f"test:b:{uuid.uuid4().hex}", f"test:c:{uuid.uuid4().hex}"
    check = BudgetCheck(budget, limit=100_000, amount=40_000, label="team budget", ttl_s=3600)
    lease_check = ConcurrencyCheck(lease, limit=1, label="key concurrency")
    unsettled, settled = _entry(world), _entry(world)
    reserved = Release(concurrency_keys=(lease,), budget_spend=((budget, 0),)).to_json()
    for number, entry in enumerate((unsettled, settled), start=1):
        line = {"entry": {**_jsonable(entry), "request_body": {}}, "release": reserved}
        (tmp_path / f"{number}-{number}.jsonl").write_bytes(orjson.dumps(line) + b"\n")
        entry.status, entry.cost_usd = AuditStatus.SUCCESS, Decimal("0.0000015")  # 1,500 nano
        entry.completed_at = entry.started_at
    with ThreadPoolExecutor(1) as pool:  # committed, as its worker did
        pool.submit(
            write_batch, [_Insert(storable_entry(e)) for e in (unsettled, settled)]
        ).result()
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

    async def before_the_crash() -> None:
        client = Redis.from_url(redis_url)
        store = RedisQuotaStore(client)
        await store.seed(budget, 0, 3600)
        for entry in (unsettled, settled):
            assert (await store.admit([check], entry.request_id, 600)).allowed
        await store.settle(Release(budget_spend=((budget, 1500),)), settled.request_id)
        await client.aclose()

    async def recovered(orphans: list[Orphan]) -> tuple[tuple[int | None, int], bool]:
        client = Redis.from_url(redis_url)
        store = RedisQuotaStore(client)
        for orphan in orphans:
            await store.settle(_settlement(orphan), orphan.request_id, at_once=True)
        state = await store.budget_state(budget)
        lease_free = (await store.admit([lease_check], "req_" + uuid.uuid4().hex, 60)).allowed
        await client.aclose()
        return state, lease_free

    asyncio.run(before_the_crash())
    with ThreadPoolExecutor(1) as pool:
        orphans = pool.submit(recover_orphans, tmp_path).result()
    after, lease_free = asyncio.run(recovered(orphans))
    again, _ = asyncio.run(recovered(orphans))  # a second sweep, or a late settlement

    assert after == (3000, 0)  # both charged once, nothing left reserved for ten minutes
    assert lease_free
    assert again == after
    assert AuditRecord.objects.get(request_id=unsettled.request_id).status == AuditStatus.SUCCESS


@pytest.mark.django_db
def test_a_stream_sealed_as_abandoned_before_recovery_does_not_stop_its_segments_recovery(
    tmp_path: Path, world: World, settings: Any
) -> None:
    # Its worker died mid-stream and came back after the sealer had chained the stream's start
    # record as abandoned (a node down a weekend): that record can never be completed, and the
    # other calls of the segment must still get their records and their reservations back.
    from datetime import timedelta

    from audit.sealer import audit_seal_pending
    from audit.storable import storable_entry
    from audit.writer import _Insert, write_batch

    stream, plain = _entry(world), _entry(world)
    stream.stream = True
    stream.started_at -= timedelta(days=3)
    release = {"window_adjustments": [], "concurrency_keys": ["k:conc"], "budget_spend": []}
    lines = [
        {"entry": {**_jsonable(entry), "request_body": {}}, "release": release}
        for entry in (stream, plain)
    ]
    (tmp_path / "1-1.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    settings.AUDIT_ABANDONED_STREAM_SECONDS = 24 * 3600
    with ThreadPoolExecutor(1) as pool:  # its start record, then the sealer, as they ran
        pool.submit(write_batch, [_Insert(storable_entry(stream))]).result()
        pool.submit(audit_seal_pending).result()
        releases = pool.submit(recover_orphans, tmp_path).result()

    assert AuditRecord.objects.get(request_id=plain.request_id).status == AuditStatus.INTERRUPTED
    assert AuditRecord.objects.get(request_id=stream.request_id).status == AuditStatus.IN_PROGRESS
    assert not (tmp_path / "1-1.jsonl").exists()
    assert sorted(o.request_id for o in releases) == sorted([stream.request_id, plain.request_id])

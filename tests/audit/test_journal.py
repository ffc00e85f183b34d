"""The write-ahead journal: lines are durable before a call goes out, and only a dead worker's
segments are recovered."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from django.utils import timezone

from audit.entries import AuditEntry
from audit.journal import Journal, JournalError, recover_orphans
from audit.models import AuditRecord, AuditStatus
from tenants.models import ApiKey
from tests.support.memory import still_held
from tests.support.world import World


def _entry(world: World | None = None) -> AuditEntry:
    team = world.team if world else None
    return AuditEntry(
        request_id=f"req_{os.urandom(12).hex()}",
        tenant_id=team.tenant_id if team else 1,
        team_id=team.pk if team else 1,
        api_key_id=ApiKey.objects.filter(team=team).first().pk if team else 1,  # type: ignore[union-attr]
        endpoint="chat.completions",
        started_at=timezone.now(),
        status=AuditStatus.IN_PROGRESS,
        end_user="ana",
    )


def test_a_line_is_on_disk_when_begin_returns_and_the_segment_goes_once_all_calls_end(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[list[bytes], list[Path]]:
        journal = Journal(tmp_path, segment_seconds=0)  # every call opens a new segment
        first, second = _entry(), _entry()
        await journal.begin(first, {"messages": [{"content": "a\u0000b"}]}, None)
        on_disk = [p.read_bytes() for p in tmp_path.glob("*.jsonl")]
        await journal.begin(second, {}, None)
        journal.end(first.request_id)
        journal.end(second.request_id)
        await asyncio.sleep(0.1)  # the writer thread removes retired segments
        left = list(tmp_path.glob("*.jsonl"))
        journal.close()
        return on_disk, left

    on_disk, left = asyncio.run(scenario())

    line = orjson.loads(on_disk[0])
    assert line["entry"]["request_body"] == {"messages": [{"content": "a\u0000b"}]}
    assert line["entry"]["end_user"] == "ana"
    assert len(left) == 1  # the current segment only; the finished one is gone


def test_a_segment_its_worker_still_holds_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "1-1.jsonl"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert recover_orphans(tmp_path) == []
        assert path.exists()
    finally:
        os.close(fd)


@pytest.mark.django_db
def test_a_dead_workers_calls_are_recorded_as_interrupted_and_a_torn_line_is_skipped(
    tmp_path: Path, world: World
) -> None:
    entry = _entry(world)
    line = {"entry": {**_jsonable(entry), "request_body": {"model": "demo"}}, "release": None}
    path = tmp_path / "2-2.jsonl"
    path.write_bytes(orjson.dumps(line) + b"\n" + b'{"entry": {"request_id": "req_torn')

    # On a thread of its own, as in a worker (run_db): its writes commit on their own connection.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(recover_orphans, tmp_path).result()

    record = AuditRecord.objects.get(request_id=entry.request_id)
    assert record.status == AuditStatus.INTERRUPTED
    assert record.request_body == {"model": "demo"} and record.end_user == "ana"
    assert not path.exists()


def _jsonable(entry: AuditEntry) -> dict[str, object]:
    from audit.journal import _jsonable as jsonable

    return jsonable(entry)


def test_a_written_line_is_let_go(tmp_path: Path) -> None:
    """A line carries the whole request body: once it is on disk the journal keeps none of it
    (it kept its last batch until the next one, which after a burst of large bodies was for
    good)."""
    marker = f"body-{os.urandom(8).hex()}"

    async def scenario() -> bool:
        journal = Journal(tmp_path)
        entry = _entry()
        await journal.begin(entry, {"messages": [{"content": marker + " x" * 1000}]}, None)
        journal.end(entry.request_id)
        held = still_held(marker)
        journal.close()
        return held

    assert not asyncio.run(scenario())


def _counting_syncs(monkeypatch: pytest.MonkeyPatch, delay: list[float] | None = None) -> list[str]:
    """Every fdatasync of the journal, by the name of the thread that made it; each takes
    `delay[0]` seconds more."""
    syncs: list[str] = []
    sync = os.fdatasync

    def counted(fd: int) -> None:
        syncs.append(threading.current_thread().name)
        if delay and delay[0]:
            time.sleep(delay[0])
        sync(fd)

    monkeypatch.setattr(os, "fdatasync", counted)
    return syncs


def test_calls_that_arrive_while_a_sync_runs_share_the_next_and_the_loop_never_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = _counting_syncs(monkeypatch, [0.02])  # a slow disk: 20 ms a sync

    async def scenario() -> tuple[list[bytes], int]:
        journal = Journal(tmp_path)
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        ticker = asyncio.get_running_loop().create_task(ticking())
        entries = [_entry() for _ in range(20)]
        await asyncio.gather(*(journal.begin(e, {"n": i}, None) for i, e in enumerate(entries)))
        ticker.cancel()
        lines = b"".join(p.read_bytes() for p in tmp_path.glob("*.jsonl")).splitlines()
        journal.close()
        return lines, ticks

    lines, ticks = asyncio.run(scenario())

    assert len(lines) == 20  # each on disk before its begin returned
    assert 1 <= len(syncs) <= 2  # the first line's sync, then one for all that queued meanwhile
    assert set(syncs) == {"audit-journal-writer"}
    assert ticks >= 10  # the event loop ran on while the disk synced


def test_a_failed_sync_fails_every_call_of_its_group_and_one_that_left_fails_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    async def scenario() -> list[BaseException | None]:
        journal = Journal(tmp_path)
        monkeypatch.setattr(os, "fdatasync", broken)
        leaving = asyncio.ensure_future(journal.begin(_entry(), {}, None))
        staying = [asyncio.ensure_future(journal.begin(_entry(), {}, None)) for _ in range(3)]
        await asyncio.sleep(0)
        leaving.cancel()  # its client went away: the others still get their answer
        results: list[BaseException | None] = await asyncio.gather(*staying, return_exceptions=True)
        journal.close()
        return results

    results = asyncio.run(scenario())

    assert [type(r) for r in results] == [JournalError] * 3
    assert all("No space left" in str(r) for r in results)


def test_nothing_is_journaled_once_the_journal_is_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = Journal(tmp_path)
        await journal.begin(_entry(), {}, None)
        journal.close()
        with pytest.raises(JournalError, match="closed"):
            await journal.begin(_entry(), {}, None)

    asyncio.run(scenario())


def test_a_write_that_fails_in_any_way_refuses_its_calls_and_the_next_ones_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import audit.journal as journal_module

    real = journal_module._write_all

    def broken(fd: int, lines: list[bytes]) -> None:
        raise ValueError("a bug, not a disk error")

    async def scenario() -> int:
        journal = Journal(tmp_path)
        monkeypatch.setattr(journal_module, "_write_all", broken)
        with pytest.raises(JournalError, match="a bug"):
            await asyncio.wait_for(journal.begin(_entry(), {}, None), 5)
        monkeypatch.setattr(journal_module, "_write_all", real)
        await asyncio.wait_for(journal.begin(_entry(), {"after": 1}, None), 5)  # not stuck
        lines = b"".join(p.read_bytes() for p in tmp_path.glob("*.jsonl")).splitlines()
        journal.close()
        return len(lines)

    assert asyncio.run(scenario()) == 1

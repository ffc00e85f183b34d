"""`manage.py journal_bench`: what the write-ahead step adds to a request, timed in-process.

Each scenario paces `Journal.begin` like requests arriving evenly at a rate (or in bursts of 32
at once), on the journal's real folder and disk, beside a baseline that paces the same loop with
no journal write: the difference is what the step costs a request.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from audit.entries import AuditEntry
from audit.journal import Journal

BODY = {"model": "bench", "messages": [{"role": "user", "content": "x" * 1500}]}


def _entry() -> AuditEntry:
    return AuditEntry(
        request_id="req_" + uuid.uuid4().hex,
        tenant_id=1,
        team_id=1,
        api_key_id=1,
        endpoint="chat.completions",
        started_at=timezone.now(),
        status="in_progress",
    )


async def _paced(journal: Journal | None, rate: float, seconds: float, burst: int) -> list[float]:
    """Latency of each step (µs), `burst` at a time, `rate` bursts per second."""
    samples: list[float] = []

    async def one() -> None:
        entry = _entry()
        begun = time.perf_counter()
        if journal is not None:
            await journal.begin(entry, BODY, None)
        samples.append((time.perf_counter() - begun) * 1e6)
        if journal is not None:
            journal.end(entry.request_id)

    interval, deadline = 1 / rate, time.perf_counter() + seconds
    next_at = time.perf_counter()
    while next_at < deadline:
        await asyncio.gather(*(one() for _ in range(burst)))
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return samples


def _row(scenario: str, samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "scenario": scenario,
        "samples": len(ordered),
        "p50_us": statistics.median(ordered),
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


async def measure(seconds: float) -> list[dict[str, Any]]:
    settings.GATEWAY_JOURNAL_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.GATEWAY_JOURNAL_DIR.parent) as folder:
        journal = Journal(Path(folder))
        rows = []
        for label, rate, burst in (
            ("100 req/s evenly", 100.0, 1),
            ("bursts of 32, 10/s", 10.0, 32),
        ):
            rows.append(_row(f"baseline, {label}", await _paced(None, rate, seconds, burst)))
            rows.append(_row(f"journal, {label}", await _paced(journal, rate, seconds, burst)))
        journal.close()
    return rows


class Command(BaseCommand):
    help = "Time the write-ahead journal's step on the hot path, beside a baseline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seconds", type=float, default=10.0)
        parser.add_argument("--json", action="store_true", help="one JSON list on stdout")

    def handle(self, *args: Any, seconds: float, json: bool, **options: Any) -> None:
        rows = asyncio.run(measure(seconds))
        if json:
            self.stdout.write(orjson.dumps(rows).decode())
            return
        for row in rows:
            self.stdout.write(
                f"{row['scenario']:34} p50 {row['p50_us']:8.1f} µs   p99 {row['p99_us']:8.1f} µs"
            )

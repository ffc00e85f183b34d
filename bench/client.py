"""The two load shapes hey cannot produce, on an aiohttp client.

- `stream`: streamed chat completions at fixed concurrency, timing the first `data:` line
  (time to first token) and the end of the stream; a number of streams, or for a time
  (the streams per second a server sustains).
- `open_loop`: requests sent at evenly spaced instants whatever the answers do. hey's `-q`
  workers tick in lockstep (10 workers x 10 qps = a burst of 10 every 100 ms), so this gives
  the uniform-arrival view of the same rate. Latency counts from the planned send instant,
  so a stalled server is charged for the requests that queue up behind it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import uvloop

from bench.hey import REQUEST_TIMEOUT_S, Target
from bench.stats import RunResult, StreamResult, percentile

_MAX_SAMPLES = 5
_T = TypeVar("_T")


@dataclass
class _Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def fail(self, exc: BaseException) -> None:
        self.errors[f"{type(exc).__name__}: {exc}"[:200]] += 1

    def samples(self) -> list[str]:
        return [f"{count}x {message}" for message, count in self.errors.most_common(_MAX_SAMPLES)]


def _session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


def _headers(target: Target) -> dict[str, str]:
    return {"Content-Type": "application/json", **dict(target.headers)}


async def _open_loop(target: Target, rate: float, duration_s: float) -> RunResult:
    tally = _Tally()
    body, headers = target.body.encode(), _headers(target)

    async def one(session: aiohttp.ClientSession, due: float) -> None:
        try:
            async with session.post(target.url, data=body, headers=headers) as response:
                await response.read()
                tally.statuses[response.status] += 1
                tally.latencies_ms.append((time.perf_counter() - due) * 1000)
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.fail(exc)

    count = max(1, round(rate * duration_s))
    async with _session(connections=256) as session:
        start = time.perf_counter()
        tasks = []
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies = sorted(tally.latencies_ms)
    return RunResult(
        label=target.label,
        duration_s=elapsed,
        statuses=tally.statuses,
        client_errors=sum(tally.errors.values()),
        error_samples=tally.samples(),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        rps=tally.statuses.get(200, 0) / elapsed if elapsed else 0.0,
    )


async def _stream(
    target: Target, concurrency: int, requests: int | None, duration_s: float | None
) -> StreamResult:
    tally = _Tally()
    ttfts: list[float] = []
    incomplete = 0
    body, headers = target.body.encode(), _headers(target)
    remaining = requests or 0
    started = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal incomplete
        start = time.perf_counter()
        first: float | None = None
        finished = False
        try:
            async with session.post(target.url, data=body, headers=headers) as response:
                async for line in response.content:
                    if first is None and line.startswith(b"data:"):
                        first = time.perf_counter()
                    if line.strip() == b"data: [DONE]":
                        finished = True
                tally.statuses[response.status] += 1
                if response.status != 200:
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.fail(exc)
            return
        if first is None or not finished:
            incomplete += 1
            return
        ttfts.append((first - start) * 1000)
        tally.latencies_ms.append((time.perf_counter() - start) * 1000)

    def more(deadline: float) -> bool:
        if duration_s is not None:
            return time.perf_counter() < deadline
        return remaining > 0

    async def worker(session: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal remaining, started
        while more(deadline):
            remaining -= 1
            started += 1
            await one(session)

    async with _session(connections=concurrency) as session:
        start = time.perf_counter()
        deadline = start + (duration_s or 0.0)
        await asyncio.gather(*(worker(session, deadline) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    ttfts.sort()
    totals = sorted(tally.latencies_ms)
    return StreamResult(
        label=target.label,
        requests=started,
        elapsed_s=elapsed,
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p99_ms=percentile(ttfts, 99),
        total_p50_ms=percentile(totals, 50),
        total_p99_ms=percentile(totals, 99),
        statuses=tally.statuses,
        client_errors=sum(tally.errors.values()),
        incomplete=incomplete,
        error_samples=tally.samples(),
    )


def open_loop(target: Target, *, rate: float, duration_s: float) -> RunResult:
    return _run(_open_loop(target, rate, duration_s))


def stream(
    target: Target,
    *,
    concurrency: int,
    requests: int | None = None,
    duration_s: float | None = None,
) -> StreamResult:
    """`requests` streams in all, or as many as `concurrency` connections start in `duration_s`."""
    return _run(_stream(target, concurrency, requests, duration_s))


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    # uvloop: the client shares two cores with both servers, so it should cost them little.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)

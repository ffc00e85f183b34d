"""Is this process close to overloaded? The checks `/readyz` adds so that a load balancer
shifts traffic away before requests slow down or fail (docs/deployment.md).

Three signals, each against a threshold from the environment:
- the audit writer's backlog (records queued or owed to the database): the database cannot keep
  up with this process;
- the database pool: callers waiting for a connection;
- event-loop lag: how late a timer fires, the worst over the last few seconds; a loop that
  is late for everything is too busy to take more.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque

from django.conf import settings
from django.db import connections

LAG_EVERY_S = 0.1
LAG_WINDOW_S = 3.0


class LoopLag:
    """Runs on its loop: how late a 0.1 s sleep wakes up, kept for the last few seconds."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(LAG_EVERY_S)
            now = time.monotonic()
            self._samples.append((now, max(0.0, now - started - LAG_EVERY_S)))
            while self._samples and self._samples[0][0] < now - LAG_WINDOW_S:
                self._samples.popleft()

    def worst_ms(self) -> float:
        now = time.monotonic()
        return 1000 * max((lag for at, lag in self._samples if at >= now - LAG_WINDOW_S), default=0)


_monitors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[LoopLag, asyncio.Task[None]]]
_monitors = weakref.WeakKeyDictionary()


def loop_lag() -> LoopLag:
    """This loop's monitor, started on first use (the balancer's first probe)."""
    loop = asyncio.get_running_loop()
    found = _monitors.get(loop)
    if found is None or found[1].done():
        monitor = LoopLag()
        found = _monitors[loop] = (monitor, loop.create_task(monitor.run()))
    return found[0]


def pool_waiting() -> int | None:
    """Callers waiting for a database connection now (None: no pool, e.g. SQLite)."""
    wrapper = connections["default"]
    if wrapper.vendor != "postgresql" or not wrapper.settings_dict.get("OPTIONS", {}).get("pool"):
        return None
    pool = getattr(wrapper, "pool", None)
    if pool is None:
        return None
    return int(pool.get_stats().get("requests_waiting", 0))


def problems(audit_backlog: int) -> list[str]:
    """What says this process should get no more traffic now; empty: none."""
    limits = settings.GATEWAY_READINESS
    found: list[str] = []
    if audit_backlog > limits.audit_backlog:
        found.append(f"audit writer backlog {audit_backlog} records (limit {limits.audit_backlog})")
    waiting = pool_waiting()
    if waiting is not None and waiting > limits.pool_waiting:
        found.append(
            f"database pool exhausted: {waiting} callers waiting (limit {limits.pool_waiting})"
        )
    lag = loop_lag().worst_ms()
    if lag > limits.loop_lag_ms:
        found.append(f"event loop lag {lag:.0f} ms (limit {limits.loop_lag_ms:.0f} ms)")
    return found

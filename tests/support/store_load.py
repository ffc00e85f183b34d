"""Load on a quota store while a test fails its Redis over: 16 callers admitting against one
counter as fast as the store answers (tests/quotas/test_redis_cluster.py, test_redis_sentinel.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tenants.quotas.core.checks import WindowCheck
from tenants.quotas.core.redis_store import RedisQuotaStore
from tenants.quotas.engine import STORE_ERRORS

CALLERS = 16


@dataclass
class Load:
    admitted: int = 0
    unknown: int = 0  # the store failed: the script may or may not have run
    errors: int = 0


async def admit_until(store: RedisQuotaStore, key: str, stop: asyncio.Event, load: Load) -> None:
    check = WindowCheck(key, 10_000_000, 1, "load")

    async def caller(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                verdict = await store.admit([check], f"w{n}-{i}", 600)
            except STORE_ERRORS:
                load.unknown += 1
                await asyncio.sleep(0.05)  # as the engine rests a failed store
                continue
            assert verdict.allowed
            load.admitted += 1

    await asyncio.gather(*(caller(n) for n in range(CALLERS)))

"""Where exact answers are kept: Redis (shared by every gateway process), or this process's
memory when the gateway runs without Redis."""

from __future__ import annotations

import fnmatch
import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster


class AnswerStore(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: int) -> None: ...

    async def purge(self, pattern: str) -> int: ...


class MemoryAnswerStore:
    """A least-recently-used map with expiry: bounded, so a busy tenant cannot grow it forever."""

    name = "memory"

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        self._entries[key] = (time.monotonic() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def purge(self, pattern: str) -> int:
        doomed = [key for key in self._entries if fnmatch.fnmatchcase(key, pattern)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)


class RedisAnswerStore:
    """Single-key commands only: on a Redis Cluster the answers spread over every slot (no hash
    tag, so that no tenant's answers crowd one node); a purge scans every master."""

    name = "redis"

    def __init__(self, client: Redis | RedisCluster) -> None:
        self.client = client

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(key)
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        await self.client.set(key, value, ex=max(1, ttl_s))

    async def purge(self, pattern: str) -> int:
        removed = 0
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += await self.client.unlink(*batch)
                batch = []
        if batch:
            removed += await self.client.unlink(*batch)
        return removed

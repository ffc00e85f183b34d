"""Deployment health shared by every gateway process through Redis.

A cooldown or an open breaker one process learns (routing/core/strategy.py HealthBook) is
written to one Redis hash, deployment id → until when (Redis's clock, milliseconds); every
process reads the hash every GATEWAY_SHARED_HEALTH_SECONDS (0.5) and cools the deployments it
lists down for what is left, so within about half a second no process sends them traffic first.
A deployment that answers again is taken off the list. Without Redis, or while it fails, each
process keeps its own view, as before. One key: fine on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.conf import settings
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from gateway_site.redis_clients import async_client
from routing.core.strategy import HealthBook

logger = logging.getLogger(__name__)

KEY = "gw:health:cooling"

# ARGV: deployment id, seconds (0: it answered again: forget it). Keeps the later end.
_PUBLISH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[2])
if ms <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or 0)
if now + ms > old then redis.call('HSET', KEYS[1], ARGV[1], now + ms) end
redis.call('PEXPIRE', KEYS[1], math.max(ms, redis.call('PTTL', KEYS[1])))
return 1
"""

# Returns {now, id, until, id, until, ...}, the ended ones dropped.
_READ = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {now}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
"""


class SharedHealth:
    def __init__(
        self, client: Redis | RedisCluster, book: HealthBook, *, every_s: float = 0.5
    ) -> None:
        self.client = client
        self.book = book
        self.every_s = every_s
        self._publish = client.register_script(_PUBLISH)
        self._read = client.register_script(_READ)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._warned_at = float("-inf")
        self.refreshed_at = float("-inf")  # monotonic time of the last successful read

    def attach(self) -> None:
        self.book.on_cooldown = self.publish

    def publish(self, deployment_id: int, seconds: float) -> None:
        """Called by the book, synchronously: the write runs in the background."""
        try:
            task = asyncio.get_running_loop().create_task(self._write(deployment_id, seconds))
        except RuntimeError:
            return  # no loop (a test driving the book directly)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, deployment_id: int, seconds: float) -> None:
        try:
            await self._publish(keys=[KEY], args=[deployment_id, int(seconds * 1000)])
        except (RedisError, RedisClusterException, OSError) as error:
            self._warn(error)

    async def refresh(self) -> None:
        raw = await self._read(keys=[KEY])
        now_ms = int(raw[0])
        for i in range(1, len(raw), 2):
            self.book.learn(int(raw[i]), (int(raw[i + 1]) - now_ms) / 1000)
        self.refreshed_at = time.monotonic()

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (RedisError, RedisClusterException, OSError) as error:
                self._warn(error)
            await asyncio.sleep(self.every_s)

    def _warn(self, error: BaseException) -> None:
        if time.monotonic() - self._warned_at > 60:
            self._warned_at = time.monotonic()
            logger.warning(
                "shared deployment health unavailable (%s: %s): this process keeps its own",
                type(error).__name__,
                error,
            )

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.client.aclose()


def build_shared_health(book: HealthBook) -> SharedHealth | None:
    every = settings.GATEWAY_SHARED_HEALTH_SECONDS
    if not settings.REDIS_URL or every <= 0:
        return None
    client = async_client(
        socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
    )
    shared = SharedHealth(client, book, every_s=every)
    shared.attach()
    return shared

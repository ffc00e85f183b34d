"""The Redis clients every part of the gateway uses: one server, a Redis Cluster, or a master
found through Sentinel.

REDIS_URL names the server, or with REDIS_CLUSTER=true any node of the cluster (the client
learns the others from it). Keys an atomic script touches together carry one hash tag, so that
the script runs on one slot (tenants/quotas/core/redis_store.py); single-key commands need none.
With REDIS_SENTINELS the sentinels name the master (REDIS_SENTINEL_MASTER) and REDIS_URL gives
only the database number and credentials: a new connection asks the sentinels where the master
is, and one that finds its server demoted to a replica is dropped, so after a failover the
client goes on with the promoted replica.
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.connection import parse_url


def async_client(**options: Any) -> Redis | RedisCluster:
    """An asyncio client for REDIS_URL; `options` as redis-py's (timeouts, retry, pool size:
    on a cluster `max_connections` is per node)."""
    if settings.REDIS_SENTINELS:
        sentinel = Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=_sentinel_kwargs(options))
        master: _AsyncMaster = sentinel.master_for(
            settings.REDIS_SENTINEL_MASTER, redis_class=_AsyncMaster, **_master_options(options)
        )
        return master
    if settings.REDIS_CLUSTER:
        return RedisCluster.from_url(settings.REDIS_URL, **options)
    return Redis.from_url(settings.REDIS_URL, **options)


def sync_client(**options: Any) -> redis.Redis | redis.RedisCluster:
    if settings.REDIS_SENTINELS:
        sentinel = redis.Sentinel(
            settings.REDIS_SENTINELS, sentinel_kwargs=_sentinel_kwargs(options)
        )
        found: _SyncMaster = sentinel.master_for(
            settings.REDIS_SENTINEL_MASTER, redis_class=_SyncMaster, **_master_options(options)
        )
        return found
    if settings.REDIS_CLUSTER:
        return redis.RedisCluster.from_url(settings.REDIS_URL, **options)
    return redis.Redis.from_url(settings.REDIS_URL, **options)


class _AsyncMaster(Redis):
    """A master found through Sentinel; closing it closes its connections to the sentinels
    too (each client asks through its own, so a short-lived client leaves none open)."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            await self.connection_pool.sentinel_manager.aclose()  # type: ignore[attr-defined]


class _SyncMaster(redis.Redis):
    def close(self) -> None:
        try:
            super().close()
        finally:
            self.connection_pool.sentinel_manager.close()  # type: ignore[attr-defined]


def _master_options(options: dict[str, Any]) -> dict[str, Any]:
    """REDIS_URL's database and credentials, then the caller's options."""
    from_url: dict[str, Any] = parse_url(settings.REDIS_URL)  # type: ignore[no-untyped-call]
    kept = {name: from_url[name] for name in ("db", "username", "password") if name in from_url}
    return {**kept, **options}


def _sentinel_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The sentinels are asked with the caller's timeouts (a sentinel that does not answer
    in time is passed over for the next)."""
    kwargs: dict[str, Any] = {
        name: options[name]
        for name in ("socket_timeout", "socket_connect_timeout")
        if name in options
    }
    if settings.REDIS_SENTINEL_PASSWORD:
        kwargs["password"] = settings.REDIS_SENTINEL_PASSWORD
    return kwargs

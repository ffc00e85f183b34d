"""The Redis clients every part of the gateway uses: one server, or a Redis Cluster.

REDIS_URL names the server, or with REDIS_CLUSTER=true any node of the cluster (the client
learns the others from it). Keys an atomic script touches together carry one hash tag, so that
the script runs on one slot (tenants/quotas/core/redis_store.py); single-key commands need none.
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster


def async_client(**options: Any) -> Redis | RedisCluster:
    """An asyncio client for REDIS_URL; `options` as redis-py's (timeouts, retry, pool size:
    on a cluster `max_connections` is per node)."""
    if settings.REDIS_CLUSTER:
        return RedisCluster.from_url(settings.REDIS_URL, **options)
    return Redis.from_url(settings.REDIS_URL, **options)


def sync_client(**options: Any) -> redis.Redis | redis.RedisCluster:
    if settings.REDIS_CLUSTER:
        return redis.RedisCluster.from_url(settings.REDIS_URL, **options)
    return redis.Redis.from_url(settings.REDIS_URL, **options)

"""The response cache on a real Redis Cluster: answers spread over the masters, and a purge by
tenant finds them on every master (asyncio store and the console's purge alike)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.crc import key_slot

from gateway_site.redis_clients import async_client, sync_client
from routing.cache.core.keys import key_pattern
from routing.cache.core.stores import RedisAnswerStore
from routing.cache.services import _redis_purge
from tests.support.redis_cluster import RedisClusterNodes


@pytest.fixture
def on_cluster(redis_cluster: RedisClusterNodes, settings: Any) -> RedisClusterNodes:
    redis_cluster.wait_ok()
    settings.REDIS_URL = redis_cluster.url
    settings.REDIS_CLUSTER = True
    return redis_cluster


def _keys(tenant: int, count: int) -> list[str]:
    return [f"gwc:t{tenant}:r0:p-:{i:064x}" for i in range(count)]


async def test_answers_spread_over_the_masters_and_a_tenant_purge_finds_them_all(
    on_cluster: RedisClusterNodes,
) -> None:
    store = RedisAnswerStore(async_client())
    mine, theirs = _keys(71, 60), _keys(72, 10)
    for key in mine + theirs:
        await store.put(key, b"answer", 60)
    assert len({key_slot(k.encode()) * 3 // 16384 for k in mine}) == 3  # every master holds some
    assert await store.get(mine[0]) == b"answer"
    removed = await store.purge(key_pattern(tenant_id=71, route=None, prompt=None))
    assert removed == 60
    assert [await store.get(k) for k in mine] == [None] * 60
    assert await store.get(theirs[0]) == b"answer"
    await store.client.aclose()


def test_the_console_purge_reaches_every_master(on_cluster: RedisClusterNodes) -> None:
    client = sync_client()
    for key in _keys(73, 30):
        client.set(key, b"answer", ex=60)
    assert _redis_purge(key_pattern(tenant_id=73, route=None, prompt=None)) == 30
    assert client.exists(*_keys(73, 30)) == 0
    client.close()

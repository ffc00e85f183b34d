"""Limits and budgets on a Sentinel-managed Redis (REDIS_SENTINELS): a master, its replica and
three sentinels started from Debian's redis-server for each test. The gateway's clients find
the master through the sentinels, Celery's broker too, and a master that dies during load is
replaced by its replica without losing more than what it had not yet replicated."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from kombu.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway_site.env import SettingError
from gateway_site.redis_clients import async_client, sync_client
from gateway_site.redis_settings import celery_sentinel_url, redis_sentinels
from tenants import services as tenants
from tenants.quotas import services as quotas
from tenants.quotas.core.redis_store import RedisQuotaStore
from tests.support.live import start_gateway, wait_for_config
from tests.support.redis_sentinel import MASTER_NAME, SentinelNodes, sentinel_set
from tests.support.store_load import Load, admit_until

pytestmark = pytest.mark.skipif(
    os.environ.get("GATEWAY_SKIP_REDIS_CLUSTER") == "1", reason="GATEWAY_SKIP_REDIS_CLUSTER=1"
)


@pytest.fixture
def sentinels(settings: Any) -> Iterator[SentinelNodes]:
    """A fresh set per test (a failover changes who is master); the gateway's settings point
    at it as REDIS_SENTINELS would."""
    for nodes in sentinel_set():
        settings.REDIS_SENTINELS = redis_sentinels(nodes.sentinels.split(","))
        settings.REDIS_SENTINEL_MASTER = MASTER_NAME
        settings.REDIS_CLUSTER = False
        settings.REDIS_URL = f"redis://{MASTER_NAME}/3"
        yield nodes


def test_sentinel_settings_fail_loudly_and_give_celery_the_same_sentinels() -> None:
    for bad in ("sentinel-without-port", "host:port", ":26379"):
        with pytest.raises(SettingError, match="host:port"):
            redis_sentinels([bad])
    sentinels = redis_sentinels(["10.0.0.1:26379", "sentinel-b:26380"])
    assert sentinels == (("10.0.0.1", 26379), ("sentinel-b", 26380))
    assert celery_sentinel_url(sentinels, "redis://:s3cret@gateway/4") == (
        "sentinel://:s3cret@10.0.0.1:26379/4;sentinel://:s3cret@sentinel-b:26380/4"
    )
    assert celery_sentinel_url(sentinels, "redis://gateway") == (
        "sentinel://10.0.0.1:26379/0;sentinel://sentinel-b:26380/0"
    )


def _quota_client() -> Any:
    # As tenants/quotas/gate.py builds it: no retries (a script whose answer was lost must not
    # count twice), a store call slower than 2 s is a store failure.
    return async_client(
        socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0), max_connections=64
    )


async def test_the_gateways_clients_find_the_master_through_the_sentinels(
    sentinels: SentinelNodes,
) -> None:
    client = _quota_client()
    try:
        await client.set("gw:sentinel-check", "async")
    finally:
        await client.aclose()
    sync = sync_client(socket_timeout=2)
    try:
        sync.set("gw:sentinel-check-sync", "sync")
    finally:
        sync.close()
    master = sentinels.node(sentinels.master_port, db=3)
    assert master.get("gw:sentinel-check") == b"async"  # REDIS_URL's db number is kept
    assert master.get("gw:sentinel-check-sync") == b"sync"


def test_celery_reaches_its_broker_through_the_sentinels(
    sentinels: SentinelNodes, settings: Any
) -> None:
    url = celery_sentinel_url(settings.REDIS_SENTINELS, settings.REDIS_URL)
    assert url.count("sentinel://") == 3
    # The transport options settings.py gives Celery with REDIS_SENTINELS.
    options = {"master_name": MASTER_NAME, "sentinel_kwargs": {"password": None}}
    with Connection(url, transport_options=options) as broker:  # type: ignore[no-untyped-call]
        queue = broker.SimpleQueue("gw-sentinel-check")
        queue.put({"task": "ping"})
        # On the master the sentinels name, in REDIS_URL's db.
        assert sentinels.node(sentinels.master_port, db=3).llen("gw-sentinel-check") == 1
        message = queue.get(timeout=5)
        assert message.payload == {"task": "ping"}
        message.ack()
        queue.close()


async def test_a_master_killed_during_load_fails_over_losing_at_most_its_unreplicated_admissions(
    sentinels: SentinelNodes,
) -> None:
    client = _quota_client()
    store = RedisQuotaStore(client, wait_s=2.0)
    key = f"gw:q:{{t{uuid.uuid4().int % 10**9}}}:t:rpm"
    stop, load = asyncio.Event(), Load()
    task = asyncio.create_task(admit_until(store, key, stop, load))
    await asyncio.sleep(1.0)
    before = load.admitted
    assert before > 0
    started = time.monotonic()
    old = sentinels.processes[sentinels.master_port]
    old.send_signal(signal.SIGKILL)
    await asyncio.to_thread(old.wait)
    while load.admitted == before or time.monotonic() - started < 0.2:
        await asyncio.sleep(0.01)
        assert time.monotonic() - started < 30, "no master was found again"
    resumed = load.admitted
    while load.admitted == resumed:
        await asyncio.sleep(0.01)
    recovery = time.monotonic() - started
    await asyncio.sleep(1.0)
    stop.set()
    await task
    await client.aclose()

    assert sentinels.master_as_sentinels_see_it() == sentinels.replica_port
    promoted = sentinels.node(sentinels.replica_port, db=3)
    counted = int(promoted.hget(key, "total") or 0)
    print(
        f"Sentinel, master killed: admitted {load.admitted}, unknown outcome {load.unknown}, "
        f"counted {counted}, lost {max(0, load.admitted - counted)}, "
        f"served again after {recovery:.2f}s"
    )
    # Replication is asynchronous: what the master acknowledged but had not yet sent to its
    # replica dies with it (docs/deployment.md). At most one round of the 16 workers.
    assert load.admitted - 16 <= counted <= load.admitted + load.unknown
    assert recovery < 15


LIMIT = 20


@pytest.fixture(scope="module")
def limited_key(quota_world: Any, django_db_blocker: Any) -> str:
    """Committed (outside any test's transaction), so that a live gateway reads it."""
    with django_db_blocker.unblock():
        tenant = tenants.tenant_apply(slug="sentinel-co", name="Sentinel Co")
        team = tenants.team_apply(tenant=tenant, slug="desk", name="Desk", allowed_models=[])
        key, material = tenants.key_create(team=team, name="sentinel-burst")
        quotas.rate_limit_set(tenant=tenant, scope="key", api_key=key, requests_per_minute=LIMIT)
    return material.plaintext


@pytest.mark.e2e
@pytest.mark.django_db
def test_a_rate_limit_holds_exactly_on_a_live_gateway_using_sentinel(
    limited_key: str, sentinels: SentinelNodes
) -> None:
    gateway = start_gateway(
        REDIS_URL=f"redis://{MASTER_NAME}/3",
        REDIS_SENTINELS=sentinels.sentinels,
        REDIS_SENTINEL_MASTER=MASTER_NAME,
        CELERY_BROKER_URL=os.environ.get("REDIS_URL") or "memory://",
    )
    try:
        wait_for_config(gateway, limited_key, "quota-chat")
        ready = httpx.get(gateway.url + "/readyz", timeout=10).json()
        assert ready["checks"]["redis"] == "ok", ready

        def ask(i: int) -> int:
            return httpx.post(
                gateway.api_url + "/chat/completions",
                headers={"authorization": f"Bearer {limited_key}"},
                json={"model": "quota-chat", "messages": [{"role": "user", "content": f"hi {i}"}]},
                timeout=30,
            ).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(ask, range(3 * LIMIT)))
    finally:
        gateway.stop()
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == 2 * LIMIT
    master = sentinels.node(sentinels.master_port, db=3)
    assert master.keys("gw:q:*")  # the counters are on the master the sentinels named

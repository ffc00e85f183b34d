"""Two live gateway processes on a real Redis Cluster (REDIS_CLUSTER=true): a key's rate limit
holds exactly across both, under concurrency."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tenants import services as tenants
from tenants.quotas import services as quotas
from tests.support.live import LiveGateway, start_gateway, wait_for_config
from tests.support.redis_cluster import RedisClusterNodes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

LIMIT = 20


@pytest.fixture(scope="module")
def cluster_gateways(
    quota_world: Any, redis_cluster: RedisClusterNodes, django_db_blocker: Any
) -> Iterator[tuple[str, tuple[LiveGateway, LiveGateway]]]:
    with django_db_blocker.unblock():
        tenant = tenants.tenant_apply(slug="cluster-co", name="Cluster Co")
        team = tenants.team_apply(tenant=tenant, slug="desk", name="Desk", allowed_models=[])
        key, material = tenants.key_create(team=team, name="cluster-burst")
        quotas.rate_limit_set(tenant=tenant, scope="key", api_key=key, requests_per_minute=LIMIT)
    env: dict[str, Any] = {
        "REDIS_URL": redis_cluster.url,
        "REDIS_CLUSTER": "true",
        "CELERY_BROKER_URL": os.environ.get("REDIS_URL") or "memory://",
    }
    gateways = (start_gateway(**env), start_gateway(**env))
    try:
        for gateway in gateways:
            wait_for_config(gateway, material.plaintext, "quota-chat")
        yield material.plaintext, gateways
    finally:
        for gateway in gateways:
            gateway.stop()


def test_a_rate_limit_holds_exactly_across_two_gateways_on_a_redis_cluster(
    cluster_gateways: tuple[str, tuple[LiveGateway, LiveGateway]],
) -> None:
    key, gateways = cluster_gateways
    for gateway in gateways:
        ready = httpx.get(gateway.url + "/readyz", timeout=10)
        assert ready.json()["checks"]["redis"] == "ok", ready.json()

    def ask(i: int) -> int:
        return httpx.post(
            gateways[i % 2].api_url + "/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "quota-chat", "messages": [{"role": "user", "content": f"hi {i}"}]},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(ask, range(3 * LIMIT)))
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == 2 * LIMIT

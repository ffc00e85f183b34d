"""Deployment health shared through Redis: a cooldown one gateway process learns (a 429 with
Retry-After) is honoured by another process within a second (routing/shared_health.py)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.conf import settings

from routing import services as routing
from routing.core.errors import UpstreamError
from routing.core.strategy import HealthBook
from routing.core.types import Target
from routing.shared_health import build_shared_health
from tests.support.live import LiveGateway, start_gateway, wait_for_config

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db,
    pytest.mark.skipif(not settings.REDIS_URL, reason="shared health needs REDIS_URL"),
]

ROUTE = "shared-health-chat"


@pytest.fixture(scope="module")
def long_429() -> Iterator[Any]:
    """Rate-limits everything and asks for 30 s of quiet."""
    from mock_provider.config import MockConfig
    from mock_provider.testing import run_mock_server

    with run_mock_server(MockConfig(status=429, fail_rate=1.0, retry_after=30)) as server:
        yield server


@pytest.fixture(scope="module")
def two_gateways(
    world: Any, mock_server: Any, long_429: Any, django_db_blocker: Any
) -> Iterator[tuple[LiveGateway, LiveGateway]]:
    with django_db_blocker.unblock():
        busy = routing.provider_upsert(
            name="mock-429-long", kind="openai", base_url=long_429.base_url + "/v1",
            credential="sk-busy", region="us",
        )  # fmt: skip
        ok = routing.provider_upsert(
            name="mock-ok-shared", kind="openai", base_url=mock_server.base_url + "/v1",
            credential="sk-ok", region="us",
        )  # fmt: skip
        first = routing.deployment_upsert(
            name="shared-busy", provider=busy, upstream_model="mock-gpt",
            input_price_per_mtok=Decimal(1), output_price_per_mtok=Decimal(1),
        )  # fmt: skip
        second = routing.deployment_upsert(
            name="shared-ok", provider=ok, upstream_model="mock-gpt",
            input_price_per_mtok=Decimal(1), output_price_per_mtok=Decimal(1),
        )  # fmt: skip
        routing.route_upsert(alias=ROUTE, description="", deployments=[first, second])
    gateways = (start_gateway(), start_gateway())
    try:
        for gateway in gateways:
            wait_for_config(gateway, world.key, ROUTE)
        yield gateways
    finally:
        for gateway in gateways:
            gateway.stop()


def _ask(gateway: LiveGateway, key: str) -> httpx.Response:
    return httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": ROUTE, "messages": [{"role": "user", "content": "hello"}]},
        timeout=30,
    )


def test_a_cooldown_one_gateway_learns_is_honoured_by_the_other_within_a_second(
    two_gateways: tuple[LiveGateway, LiveGateway], long_429: Any, world: Any
) -> None:
    one, other = two_gateways
    asked = len(long_429.requests())
    answer = _ask(one, world.key)
    learned_at = time.monotonic()
    assert answer.status_code == 200  # it failed over to the healthy deployment
    assert len(long_429.requests()) == asked + 1  # after the busy one's 429

    time.sleep(max(0.0, 1.0 - (time.monotonic() - learned_at)))
    answer = _ask(other, world.key)
    assert answer.status_code == 200
    # The other process went straight to the healthy deployment: it never asked the busy one.
    assert len(long_429.requests()) == asked + 1


def _target(deployment_id: int) -> Target:
    return Target(
        deployment_id=deployment_id, deployment_name="d", provider_name="p", kind="openai",
        base_url="http://x", api_key="k", upstream_model="m",
    )  # fmt: skip


async def test_two_processes_books_agree_within_one_refresh_and_forget_a_recovered_deployment(
    settings: Any,
) -> None:
    settings.GATEWAY_SHARED_HEALTH_SECONDS = 0.5
    books = HealthBook(), HealthBook()
    shared = [build_shared_health(book) for book in books]
    assert shared[0] is not None and shared[1] is not None
    readers = [asyncio.create_task(s.run()) for s in shared]  # type: ignore[union-attr]
    try:
        target = _target(900_000 + os.getpid() % 1000)
        await asyncio.sleep(0.1)  # both have read once: the other learns it at its next read
        began = time.monotonic()
        books[0].record_failure(
            target, UpstreamError("limited", status=429, cause="rate_limited", retry_after=20)
        )
        while not books[1].cooling(target):
            await asyncio.sleep(0.01)
            assert time.monotonic() - began < 1.0
        print(f"cooldown known to the other process after {time.monotonic() - began:.3f}s")
        assert not books[1].snapshot()[target.deployment_id][1]  # learned, not a failure of its own

        books[0].record_success(target, 10.0)  # it answered again: no longer shared
        await asyncio.sleep(0.2)
        fresh = HealthBook()
        reader = build_shared_health(fresh)
        assert reader is not None
        await reader.refresh()
        assert not fresh.cooling(target)
        await reader.aclose()
    finally:
        for task in readers:
            task.cancel()
        for s in shared:
            await s.aclose()  # type: ignore[union-attr]


def test_without_redis_each_process_keeps_its_own_view(settings: Any) -> None:
    settings.REDIS_URL = ""
    settings.GATEWAY_SHARED_HEALTH_SECONDS = 0.5
    book = HealthBook()
    assert build_shared_health(book) is None
    assert book.on_cooldown is None

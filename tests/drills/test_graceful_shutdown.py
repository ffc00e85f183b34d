"""Drill: a gateway told to stop (SIGTERM, as a deploy or a scale-down does) finishes its work.

60 requests are at a slow provider (a third streamed, their chunks still coming) when the
gateway receives SIGTERM. It must stop taking new connections, deliver every answer and every
stream whole, write every audit record as a success (none `interrupted`, none missing), leave no
budget reserved, and exit by itself. Run alone: `pytest tests/drills/test_graceful_shutdown.py`.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings

from audit.models import AuditRecord, AuditStatus
from mock_provider.config import MockConfig
from mock_provider.testing import MockServer, run_mock_server
from tenants.quotas import services as quotas
from tenants.quotas.models import Budget
from tests.support.live import start_gateway, wait_for_config
from tests.support.spend import redis_budget_nanos
from tests.support.world import build_route, build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ROUTE = "drain-chat"
SLUG = "drain-co"
IN_FLIGHT = 60


@pytest.fixture(scope="module")
def slow_provider() -> Iterator[MockServer]:
    # 2 s before an answer; a stream's chunks keep coming for about 1 s more.
    with run_mock_server(MockConfig(latency_ms=2000, chunk_delay_ms=150)) as server:
        yield server


@pytest.fixture(scope="module")
def drain_key(django_db_setup: None, django_db_blocker: Any, slow_provider: MockServer) -> str:
    with django_db_blocker.unblock():
        build_route(
            ROUTE,
            base_url=slow_provider.openai_base_url,
            provider="drain-llm",
            deployment="drain-gpt",
            upstream_model="drain-gpt-1",
            input_price=Decimal(1000),
            output_price=Decimal(1000),
            credential="sk-drain",
            region="",
        )
        built = build_tenant(SLUG, name="Drain Co", teams=["desk"], keys=["drain-app"])
        tenant, team = built.tenant, built.team
        material = built.keys["drain-app"]
        quotas.budget_set(tenant=tenant, scope="team", team=team, amount_usd=Decimal("10000"))
    return material.plaintext


def seen_by_provider(provider: MockServer, tag: str) -> int:
    return sum(
        1
        for entry in list(provider.app.requests)
        for message in (entry.get("body") or {}).get("messages") or ()
        if str(message.get("content", "")).startswith(tag)
    )


def test_a_stopped_gateway_finishes_and_records_every_call_in_flight(
    world: Any,
    drain_key: str,
    slow_provider: MockServer,
    django_db_blocker: Any,
    record_property: Any,
) -> None:
    tag = f"drain-{uuid.uuid4().hex[:6]}-"
    gateway = start_gateway()
    wait_for_config(gateway, drain_key, ROUTE)
    outcomes: list[tuple[int, bool, str]] = []  # status, stream, whole text or error

    async def one(client: httpx.AsyncClient, i: int) -> tuple[int, bool, str]:
        stream = i % 3 == 0
        body = {
            "model": ROUTE,
            "messages": [{"role": "user", "content": f"{tag}{i:03d}"}],
            "max_tokens": 8,
            "stream": stream,
        }
        headers = {"authorization": f"Bearer {drain_key}"}
        url = gateway.api_url + "/chat/completions"
        try:
            if not stream:
                response = await client.post(url, headers=headers, json=body)
                return response.status_code, False, response.text
            async with client.stream("POST", url, headers=headers, json=body) as response:
                text = (await response.aread()).decode()
                return response.status_code, True, text
        except httpx.HTTPError as exc:
            return 0, stream, repr(exc)

    async def all_of_them() -> None:
        limits = httpx.Limits(max_connections=IN_FLIGHT)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            outcomes.extend(await asyncio.gather(*(one(client, i) for i in range(IN_FLIGHT))))

    clients = threading.Thread(target=asyncio.run, args=(all_of_them(),), daemon=True)
    clients.start()
    deadline = time.monotonic() + 20
    while seen_by_provider(slow_provider, tag) < IN_FLIGHT:
        assert time.monotonic() < deadline, "the calls never reached the provider"
        time.sleep(0.05)

    gateway.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.TransportError):  # no new work once told to stop
        httpx.get(gateway.url + "/healthz", timeout=2)
    clients.join(timeout=30)
    exit_code = gateway.process.wait(timeout=30)

    failed = [o for o in outcomes if o[0] != 200]
    cut_streams = [o for o in outcomes if o[1] and not o[2].rstrip().endswith("data: [DONE]")]
    assert len(outcomes) == IN_FLIGHT
    assert failed == []
    assert cut_streams == []
    # After a clean shutdown uvicorn re-raises the signal it caught, as a process should.
    assert exit_code in (0, -signal.SIGTERM)
    with django_db_blocker.unblock():
        statuses = list(
            AuditRecord.objects.filter(
                tenant__slug=SLUG, request_body__messages__0__content__startswith=tag
            ).values_list("status", flat=True)
        )
        budget = Budget.objects.get(tenant__slug=SLUG)
    assert len(statuses) == IN_FLIGHT
    assert set(statuses) == {AuditStatus.SUCCESS}
    client = redis.Redis.from_url(settings.REDIS_URL)
    _, reserved = redis_budget_nanos(client, f"gw:b:{budget.id}:*")
    assert reserved == 0
    record_property(
        "observed",
        f"SIGTERM with {IN_FLIGHT} in flight ({len(range(0, IN_FLIGHT, 3))} streams): "
        f"{IN_FLIGHT} answered whole, {len(statuses)} records all success, 0 reserved, "
        f"exit {exit_code}",
    )


def test_calls_still_running_when_the_grace_ends_are_recorded_not_lost(
    world: Any, drain_key: str, slow_provider: MockServer, django_db_blocker: Any
) -> None:
    """With a grace shorter than the provider's answer, the calls (streams too) are cut, and
    still recorded, each as interrupted and with what was asked."""
    tag = f"cut-{uuid.uuid4().hex[:6]}-"
    gateway = start_gateway(GATEWAY_SHUTDOWN_GRACE_SECONDS="1")
    wait_for_config(gateway, drain_key, ROUTE)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        body = {
            "model": ROUTE,
            "messages": [{"role": "user", "content": f"{tag}{i:03d}"}],
            "stream": i % 2 == 0,
        }
        headers = {"authorization": f"Bearer {drain_key}"}
        url = gateway.api_url + "/chat/completions"
        try:
            async with client.stream("POST", url, headers=headers, json=body) as response:
                await response.aread()
        except httpx.HTTPError:
            pass  # cut by the shutdown: the drill

    async def all_of_them() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.gather(*(one(client, i) for i in range(10)))

    clients = threading.Thread(target=asyncio.run, args=(all_of_them(),), daemon=True)
    clients.start()
    deadline = time.monotonic() + 20
    while seen_by_provider(slow_provider, tag) < 10:
        assert time.monotonic() < deadline, "the calls never reached the provider"
        time.sleep(0.05)
    gateway.process.send_signal(signal.SIGTERM)
    gateway.process.wait(timeout=30)
    clients.join(timeout=30)

    with django_db_blocker.unblock():
        records = AuditRecord.objects.filter(
            tenant__slug=SLUG, request_body__messages__0__content__startswith=tag
        )
        assert records.count() == 10  # the filter reads what was asked: each has it
        assert set(records.values_list("status", "error_type")) == {
            (AuditStatus.INTERRUPTED, "interrupted")
        }
        budget = Budget.objects.get(tenant__slug=SLUG)
    # The cut calls' reservations were given back by the stopping worker, not left to expire.
    client = redis.Redis.from_url(settings.REDIS_URL)
    _, held = redis_budget_nanos(client, f"gw:b:{budget.id}:*")
    assert held == 0

"""Drill: a gateway killed with calls in flight leaves no provider call without its record.

Three times: 200 requests at once (a third streamed) reach a slow provider, the gateway is
SIGKILLed, and a new one starts. Then the provider's request log and the audit table agree one
to one (every call the provider saw has exactly one record), every call that had not finished is
recorded as `interrupted`, the chain verifies, and the budget counter in Redis equals the ledger
with nothing left reserved. Run alone: `pytest tests/drills/test_crash_mid_flight.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from django.core.management import call_command
from django.db.models import Sum

from audit.models import AuditRecord, AuditStatus
from mock_provider.config import MockConfig
from mock_provider.testing import MockServer, run_mock_server
from tenants.quotas import services as quotas
from tenants.quotas.models import Budget, SpendEntry
from tests.support.live import LiveGateway, start_gateway, wait_for_config
from tests.support.spend import redis_budget_nanos
from tests.support.world import build_route, build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ROUTE = "crash-chat"
IN_FLIGHT = 200
SLUG = "crash-co"


@pytest.fixture(scope="module")
def slow_provider() -> Iterator[MockServer]:
    # Answers take 4 s: the kill always lands while the calls are at the provider.
    with run_mock_server(MockConfig(latency_ms=4000)) as server:
        yield server


@pytest.fixture(scope="module")
def crash_key(django_db_setup: None, django_db_blocker: Any, slow_provider: MockServer) -> str:
    with django_db_blocker.unblock():
        build_route(
            ROUTE,
            base_url=slow_provider.openai_base_url,
            provider="crash-llm",
            deployment="crash-gpt",
            upstream_model="crash-gpt-1",
            input_price=Decimal(1000),
            output_price=Decimal(1000),
            credential="sk-crash",
            region="",
        )
        built = build_tenant(SLUG, name="Crash Co", teams=["desk"], keys=["crash-app"])
        tenant, team = built.tenant, built.team
        material = built.keys["crash-app"]
        quotas.budget_set(tenant=tenant, scope="team", team=team, amount_usd=Decimal("10000"))
    return material.plaintext


def fire(gateway: LiveGateway, key: str, markers: list[str]) -> threading.Thread:
    """Send one request per marker at once (every third streamed), in the background."""

    async def one(client: httpx.AsyncClient, i: int, marker: str) -> None:
        body = {
            "model": ROUTE,
            "messages": [{"role": "user", "content": marker}],
            "max_tokens": 8,
            "stream": i % 3 == 0,
        }
        with contextlib.suppress(httpx.HTTPError):  # the gateway dies under it: the drill
            await client.post(
                gateway.api_url + "/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json=body,
            )

    async def all_of_them() -> None:
        limits = httpx.Limits(max_connections=len(markers))
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            await asyncio.gather(*(one(client, i, m) for i, m in enumerate(markers)))

    thread = threading.Thread(target=asyncio.run, args=(all_of_them(),), daemon=True)
    thread.start()
    return thread


def seen_by_provider(provider: MockServer, run: str) -> list[str]:
    markers = []
    for entry in list(provider.app.requests):
        for message in (entry.get("body") or {}).get("messages") or ():
            content = message.get("content")
            if isinstance(content, str) and content.startswith(run):
                markers.append(content)
    return markers


def recorded(run: str) -> dict[str, str]:
    """marker → status, for every audit record of this run (a marker twice fails the drill)."""
    by_marker: dict[str, str] = {}
    for body, status in AuditRecord.objects.filter(
        tenant__slug=SLUG, request_body__messages__0__content__startswith=run
    ).values_list("request_body", "status"):
        marker = body["messages"][0]["content"]
        assert marker not in by_marker, f"{marker} has two records"
        by_marker[marker] = status
    return by_marker


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def budget_counters() -> tuple[int, int]:
    """(spent, still reserved) in nano-USD, from Redis, for the crash team's budget."""
    budget = Budget.objects.get(tenant__slug=SLUG)
    return redis_budget_nanos(redis.Redis.from_url(settings.REDIS_URL), f"gw:b:{budget.id}:*")


@pytest.mark.parametrize("run", range(3))
def test_a_killed_gateway_leaves_every_provider_call_recorded(
    run: int,
    world: Any,
    crash_key: str,
    slow_provider: MockServer,
    django_db_blocker: Any,
    record_property: Any,
) -> None:
    tag = f"crash-{uuid.uuid4().hex[:6]}-"
    markers = [f"{tag}{i:03d}" for i in range(IN_FLIGHT)]
    gateway = start_gateway()
    wait_for_config(gateway, crash_key, ROUTE)

    clients = fire(gateway, crash_key, markers)
    wait_until(lambda: len(seen_by_provider(slow_provider, tag)) == IN_FLIGHT, 20, "the provider")
    gateway.process.kill()  # SIGKILL: no shutdown, no flush
    gateway.process.wait()
    clients.join(timeout=30)

    restarted = start_gateway()  # its start-up records the dead worker's calls
    try:
        with django_db_blocker.unblock():
            wait_until(lambda: len(recorded(tag)) >= IN_FLIGHT, 15, "the recovery")
            time.sleep(0.5)  # anything recorded twice would show now
            records = recorded(tag)
            assert sorted(records) == sorted(seen_by_provider(slow_provider, tag))
            assert set(records.values()) == {AuditStatus.INTERRUPTED}
            interrupted = AuditRecord.objects.filter(
                tenant__slug=SLUG, request_body__messages__0__content__startswith=tag
            )
            assert all(r.error_type == "interrupted" for r in interrupted)
            assert interrupted.filter(stream=True).count() == len(range(0, IN_FLIGHT, 3))

            call_command("audit_seal")
            call_command("audit_verify", tenant=SLUG)  # raises if the chain does not verify

            ledger = SpendEntry.objects.filter(tenant__slug=SLUG).aggregate(s=Sum("amount_usd"))
            spent, reserved = budget_counters()
            assert reserved == 0
            assert spent == int((ledger["s"] or Decimal(0)) * 10**9)
            record_property(
                "observed",
                f"run {run + 1}: {IN_FLIGHT} at the provider, {len(records)} records "
                f"({len(records)} interrupted), chain verifies, Redis = ledger, 0 reserved",
            )
    finally:
        restarted.stop()

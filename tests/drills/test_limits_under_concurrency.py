"""Drill: a limit holds whatever the load on the gateway itself.

A key limited to 10 requests a minute sends 1,000 requests at once, split across two gateway
processes that share Redis: exactly 10 are admitted, the rest are refused with 429 (never served
unchecked because the gateway's own connections to Redis ran out, and never a 5xx). A tenant with
ample budget sends a burst of 400: every request is served (a busy gateway is not a Redis
outage, so budgets do not fail closed either).
Run alone: `pytest tests/drills/test_limits_under_concurrency.py`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from audit.models import AuditRecord
from routing import services as routing
from tenants.quotas import services as quotas
from tests.support.live import LiveGateway, start_gateway, wait_for_config
from tests.support.world import build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ROUTE = "burst-chat"


def _key(slug: str, mock_url: str) -> tuple[str, Any]:
    provider = routing.provider_upsert(
        name="burst-llm", kind="openai", base_url=mock_url + "/v1", credential="sk-b", region=""
    )
    deployment = routing.deployment_upsert(
        name="burst-gpt",
        provider=provider,
        upstream_model="burst-gpt-1",
        input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(1),
    )
    routing.route_upsert(alias=ROUTE, description="", deployments=[deployment])
    built = build_tenant(slug, name=slug.title(), teams=["desk"], keys=[f"{slug}-app"])
    issued = built.keys[f"{slug}-app"]
    return issued.plaintext, (built.tenant, built.team, issued.api_key)


@pytest.fixture(scope="module")
def limited_key(django_db_setup: None, django_db_blocker: Any, mock_server: Any) -> str:
    with django_db_blocker.unblock():
        plaintext, (tenant, _, key) = _key("burst-limited", mock_server.base_url)
        quotas.rate_limit_set(tenant=tenant, scope="key", api_key=key, requests_per_minute=10)
    return plaintext


@pytest.fixture(scope="module")
def budgeted_key(django_db_setup: None, django_db_blocker: Any, mock_server: Any) -> str:
    with django_db_blocker.unblock():
        plaintext, (tenant, team, _) = _key("burst-budgeted", mock_server.base_url)
        quotas.budget_set(tenant=tenant, scope="team", team=team, amount_usd=Decimal("1000"))
    return plaintext


@pytest.fixture(scope="module")
def two_gateways(world: Any) -> Iterator[list[LiveGateway]]:
    gateways = [start_gateway(), start_gateway()]
    yield gateways
    for gateway in gateways:
        gateway.stop()


async def burst(gateways: list[LiveGateway], key: str, count: int) -> Counter[tuple[int, str]]:
    """`count` requests at once, alternating between the gateways; (status, error code) of each."""
    body = {"model": ROUTE, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(i: int) -> tuple[int, str]:
            response = await client.post(
                gateways[i % len(gateways)].api_url + "/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json=body,
            )
            code = "" if response.status_code == 200 else response.json()["error"]["code"]
            return response.status_code, code or ""

        return Counter(await asyncio.gather(*(one(i) for i in range(count))))


def _summary(outcomes: Counter[tuple[int, str]]) -> str:
    return ", ".join(f"{n} x {status}" for (status, _), n in sorted(outcomes.items()))


def test_1000_concurrent_requests_on_two_gateways_admit_exactly_the_limit(
    two_gateways: list[LiveGateway],
    limited_key: str,
    django_db_blocker: Any,
    record_property: Any,
) -> None:
    for gateway in two_gateways:
        wait_for_config(gateway, limited_key, ROUTE)

    outcomes = asyncio.run(burst(two_gateways, limited_key, 1000))
    record_property("observed", f"limit 10/min, 1,000 at once on 2 gateways: {_summary(outcomes)}")

    assert outcomes[(200, "")] == 10, outcomes
    assert outcomes[(429, "rate_limit_exceeded")] == 990, outcomes
    with django_db_blocker.unblock():
        served = AuditRecord.objects.filter(
            api_key__tenant__slug="burst-limited", http_status=200
        ).exclude(endpoint__endswith="dry_run")
        assert served.count() == 10
        assert not served.filter(quota__store__startswith="unavailable").exists()


def test_a_burst_under_ample_budget_is_served_not_refused(
    two_gateways: list[LiveGateway], budgeted_key: str, record_property: Any
) -> None:
    for gateway in two_gateways:
        wait_for_config(gateway, budgeted_key, ROUTE)

    outcomes = asyncio.run(burst(two_gateways, budgeted_key, 400))
    record_property("observed", f"budgeted burst of 400: {_summary(outcomes)}")

    assert outcomes == Counter({(200, ""): 400})

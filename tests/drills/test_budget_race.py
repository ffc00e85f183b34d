"""Drill: no team can overspend, whatever the concurrency, the calendar or the counters do.

Spend is a ledger; a budget is a limit over a calendar window of it. Before forwarding, the
gateway reserves each request's worst-case cost at every level, and settles the real cost after.
Run alone: `pytest tests/drills/test_budget_race.py`.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest
import time_machine
from django.db.models import Sum
from django.test import AsyncClient

from audit.models import AuditRecord
from routing.runtime import close_runtime
from tenants.models import Team, Tenant
from tenants.quotas import services as quotas
from tenants.quotas.models import SpendEntry
from tests.support.live import free_port, start_gateway, wait_for_config
from tests.support.world import build_route, build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

# $1 per 1,000 tokens each way: a request here costs a few cents, its reservation a bit more.
PRICE_PER_MTOK = Decimal(1000)
MAX_TOKENS = 40


@dataclass
class Treasury:
    tenant: Tenant
    team: Team
    key: str


def build_treasury(
    mock_url: str, slug: str, *, budget: Decimal, spent: Decimal, spent_at: datetime | None = None
) -> Treasury:
    """A team whose monthly budget has `budget - spent` left (the rest spent earlier this month)."""
    build_route(
        "treasury-chat",
        base_url=mock_url + "/v1",
        provider="treasury-llm",
        deployment="treasury-gpt",
        upstream_model="treasury-gpt-1",
        input_price=PRICE_PER_MTOK,
        output_price=PRICE_PER_MTOK,
        credential="sk-t",
        region="",
    )
    treasury = build_tenant(slug, name=slug.title(), teams=["treasury"], keys=[f"{slug}-app"])
    tenant, team = treasury.tenant, treasury.team
    quotas.budget_set(tenant=tenant, scope="team", team=team, amount_usd=budget)
    if spent:
        SpendEntry.objects.create(
            tenant=tenant, team=team, amount_usd=spent, occurred_at=spent_at or datetime.now(UTC)
        )
    return Treasury(tenant, team, treasury.key(f"{slug}-app"))


def window_spend(team: Team, since: datetime, until: datetime) -> Decimal:
    entries = SpendEntry.objects.filter(team=team, occurred_at__gte=since, occurred_at__lt=until)
    return entries.aggregate(total=Sum("amount_usd"))["total"] or Decimal(0)


def this_month() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


# Committed before any test's transaction, so that the gateway processes see it.
@pytest.fixture(scope="module")
def race_co(django_db_setup: None, django_db_blocker: Any, mock_server: Any) -> Treasury:
    with django_db_blocker.unblock():
        return build_treasury(
            mock_server.base_url, "race-co", budget=Decimal("5.00"), spent=Decimal("4.00")
        )


@pytest.fixture(scope="module")
def boundary_co(django_db_setup: None, django_db_blocker: Any, mock_server: Any) -> Treasury:
    with django_db_blocker.unblock():
        return build_treasury(
            mock_server.base_url,
            "boundary-co",
            budget=Decimal("1.00"),
            spent=Decimal("0.99"),
            spent_at=datetime(2026, 11, 30, 12, tzinfo=UTC),
        )


@pytest.fixture(scope="module")
def restart_co(django_db_setup: None, django_db_blocker: Any, mock_server: Any) -> Any:
    with django_db_blocker.unblock():
        treasury = build_treasury(
            mock_server.base_url, "restart-co", budget=Decimal("50.00"), spent=Decimal("10.00")
        )
        open_co = build_tenant(
            "limits-only-co", name="Limits Only", teams=["ops"], keys=["ops-app"]
        )
        quotas.rate_limit_set(
            tenant=open_co.tenant,
            scope="key",
            api_key=open_co.keys["ops-app"].api_key,
            requests_per_minute=1000,
        )
    return treasury, open_co.key("ops-app")


def test_200_concurrent_requests_overspend_by_at_most_one_reservation(
    gateway: Any, race_co: Treasury, django_db_blocker: Any
) -> None:
    treasury = race_co
    wait_for_config(gateway, treasury.key, "treasury-chat")
    sdk = openai.OpenAI(base_url=gateway.api_url, api_key=treasury.key, max_retries=0)

    def one(i: int) -> tuple[int, str, dict[str, str]]:
        try:
            raw = sdk.chat.completions.with_raw_response.create(
                model="treasury-chat",
                messages=[{"role": "user", "content": f"Settle invoice {i} for the quarter"}],
                max_tokens=MAX_TOKENS,
            )
            return 200, raw.headers["x-request-id"], dict(raw.headers)
        except openai.APIStatusError as error:
            return error.status_code, error.response.json()["error"]["code"], {}

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(one, range(200)))

    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    assert served and refused, results[:3]
    assert {(status, code) for status, code, _ in refused} == {(429, "budget_exceeded")}
    with django_db_blocker.unblock():
        records = [AuditRecord.objects.get(request_id=rid) for _, rid, _ in served]
        start, end = this_month()
        spent = window_spend(treasury.team, start, end)
        charged = SpendEntry.objects.filter(request_id__in=[r.request_id for r in records])
        ledger_total = charged.aggregate(total=Sum("amount_usd"))["total"]
    # The ledger and the audit trail agree to the cent (exactly, in fact).
    assert ledger_total == sum(r.cost_usd for r in records)
    largest_reservation = max(Decimal(r.quota["reserved_usd"]) for r in records)
    assert spent <= Decimal("5.00") + largest_reservation
    assert spent > Decimal("4.00")


async def _ask(client: AsyncClient, key: str, text: str) -> tuple[int, dict[str, Any]]:
    body = orjson.dumps(
        {
            "model": "treasury-chat",
            "messages": [{"role": "user", "content": text}],
            "max_tokens": 20,
        }
    )
    response = await client.post(
        "/v1/chat/completions",
        body,
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    return response.status_code, orjson.loads(response.content)


async def test_a_month_boundary_opens_a_new_window_without_a_wrong_refusal(
    boundary_co: Treasury, django_db_blocker: Any
) -> None:
    """November is used up; from the first second of December the team is served again, and
    November's spend is still November's."""
    boundary = datetime(2026, 12, 1, tzinfo=UTC)
    treasury = boundary_co
    with time_machine.travel(datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC), tick=True) as clock:
        client = AsyncClient()
        try:
            november = [await _ask(client, treasury.key, f"late {i}") for i in range(3)]
            clock.move_to(boundary)
            december = await asyncio.gather(
                *(_ask(client, treasury.key, f"early {i}") for i in range(20))
            )
        finally:
            await close_runtime()

    assert [status for status, _ in november] == [429, 429, 429]
    assert all(body["error"]["code"] == "budget_exceeded" for _, body in november)
    assert [status for status, _ in december] == [200] * 20
    with django_db_blocker.unblock():
        nov = await asyncio.to_thread(
            window_spend, treasury.team, datetime(2026, 11, 1, tzinfo=UTC), boundary
        )
        dec = await asyncio.to_thread(
            window_spend, treasury.team, boundary, datetime(2027, 1, 1, tzinfo=UTC)
        )
    assert nov == Decimal("0.99")  # nothing was reset or moved
    assert Decimal(0) < dec <= Decimal("1.00")


@dataclass
class OwnRedis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    redis = OwnRedis(free_port())
    redis.start()
    yield redis
    redis.stop()


def test_redis_stopped_and_restarted_mid_test_follows_the_policy_and_forgets_no_spend(
    own_redis: OwnRedis, restart_co: Any, django_db_blocker: Any
) -> None:
    treasury, open_key = restart_co
    gateway = start_gateway(REDIS_URL=own_redis.url)
    try:

        def call(key: str, text: str) -> httpx.Response:
            return httpx.post(
                gateway.api_url + "/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={
                    "model": "treasury-chat",
                    "max_tokens": 20,
                    "messages": [{"role": "user", "content": text}],
                },
                timeout=30,
            )

        before = [call(treasury.key, f"before {i}") for i in range(5)]
        assert [r.status_code for r in before] == [200] * 5
        remaining_before = Decimal(before[-1].headers["x-gateway-budget-remaining-usd"])

        own_redis.stop()
        during_budget = [call(treasury.key, f"during {i}") for i in range(3)]
        during_limits = [call(open_key, f"during {i}") for i in range(3)]
        # Budgets fail closed by default: a clear 503, never a 500, never unchecked spend.
        assert [r.status_code for r in during_budget] == [503] * 3
        assert {r.json()["error"]["code"] for r in during_budget} == {"quota_unavailable"}
        # Rate limits fail open by default: served, and the record says it went unchecked.
        assert [r.status_code for r in during_limits] == [200] * 3, during_limits[0].text

        own_redis.start()  # empty: Redis keeps nothing on disk here
        deadline = time.monotonic() + 10
        after = call(treasury.key, "after")
        while after.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            after = call(treasury.key, "after")
        assert after.status_code == 200
        remaining_after = Decimal(after.headers["x-gateway-budget-remaining-usd"])
        # The month's spend came back from the ledger: not reset to zero by the empty Redis.
        with django_db_blocker.unblock():
            start, end = this_month()
            spent = window_spend(treasury.team, start, end)
        assert spent > Decimal("10.00")
        assert remaining_after < remaining_before
        assert remaining_after <= Decimal("50.00") - spent + Decimal("0.0001")
    finally:
        gateway.stop()

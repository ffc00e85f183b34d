"""A budget window reloaded from the ledger after a store failure: a call the ledger already
holds is counted once, whether its settlement came before the reload, after it, or never."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from redis.asyncio import Redis

from tenants.quotas.core.checks import Release
from tenants.quotas.core.redis_store import RedisQuotaStore
from tenants.quotas.engine import Demand, QuotaEngine
from tenants.quotas.models import SpendEntry
from tenants.quotas.table import BudgetRule, QuotaTable
from tests.support.world import build_tenant

# The ledger rows are committed by other threads, as the gateway's are, and read off-thread.
pytestmark = pytest.mark.django_db

COST = Decimal("0.00002")  # 20,000 nano-USD: what each call cost, on its ledger row
COST_NANOS = 20_000


class _Table:
    def __init__(self, table: QuotaTable) -> None:
        self.table = table

    async def get(self) -> QuotaTable:
        return self.table


async def _world() -> tuple[QuotaEngine, Demand, Redis, int, int]:
    built = await sync_to_async(build_tenant)(f"reseed-{uuid.uuid4().hex[:8]}", teams=["desk"])
    tenant, team = built.tenant, built.teams["desk"]
    rule = BudgetRule(
        id=900_000 + tenant.pk % 100_000, scope="tenant", label="tenant budget",
        amount_usd=Decimal(1), period="month", timezone="UTC", alert_thresholds_pct=(),
        shadow=False, tenant_id=tenant.pk, team_id=None, api_key_id=None, per_user=False,
    )  # fmt: skip
    client = Redis.from_url(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    engine = QuotaEngine(
        RedisQuotaStore(client),
        _Table(QuotaTable(budgets={("tenant", tenant.pk): (rule,)})),  # type: ignore[arg-type]
        store_name="redis",
    )
    demand = Demand(
        tenant_id=tenant.pk, team_id=team.pk, key_id=0, end_user="", prompt_tokens=10,
        tokens_exact=True, max_output_tokens=10, input_price_per_mtok=Decimal(1000),
        output_price_per_mtok=Decimal(1000),
    )  # fmt: skip
    return engine, demand, client, tenant.pk, team.pk


async def _charge(request_id: str, tenant_id: int, team_id: int) -> None:
    """The call's record and ledger row, committed by its worker."""
    await SpendEntry.objects.acreate(
        request_id=request_id, tenant_id=tenant_id, team_id=team_id, amount_usd=COST,
        occurred_at=datetime.now(UTC),
    )  # fmt: skip


async def _counter(engine: QuotaEngine, key: str) -> tuple[int | None, int]:
    return await engine.store.budget_state(key)  # type: ignore[attr-defined]


def _fail(engine: QuotaEngine) -> None:
    """The store failed once (for any request), and is tried again at once."""
    engine.store_failed(ConnectionError("lost"))
    engine._down_until = 0.0


def test_a_call_recorded_before_a_reload_and_settled_after_it_is_charged_once() -> None:
    asyncio.run(_a_call_recorded_before_a_reload_and_settled_after_it_is_charged_once())


async def _a_call_recorded_before_a_reload_and_settled_after_it_is_charged_once() -> None:
    engine, demand, client, tenant_id, team_id = await _world()
    try:
        first = await engine.admit(demand, "req_" + uuid.uuid4().hex)
        key = first.checks[0].key
        await _charge(first.request_id, tenant_id, team_id)
        _fail(engine)  # before the call's settlement reached the counters
        second = await engine.admit(demand, "req_" + uuid.uuid4().hex)  # reloads the window
        await engine.settle(first, total_tokens=20, cost_usd=COST)
        await engine.settle(second, total_tokens=0, cost_usd=Decimal(0))
        await engine.store.drain()
        assert await _counter(engine, key) == (COST_NANOS, 0)
    finally:
        await client.aclose()


def test_a_lost_settlement_leaves_nothing_reserved_once_the_window_is_reloaded() -> None:
    asyncio.run(_a_lost_settlement_leaves_nothing_reserved_once_the_window_is_reloaded())


async def _a_lost_settlement_leaves_nothing_reserved_once_the_window_is_reloaded() -> None:
    engine, demand, client, tenant_id, team_id = await _world()
    try:
        first = await engine.admit(demand, "req_" + uuid.uuid4().hex)
        key = first.checks[0].key
        await _charge(first.request_id, tenant_id, team_id)
        _fail(engine)  # its settlement never reached the counters (the network dropped it)
        second = await engine.admit(demand, "req_" + uuid.uuid4().hex)  # reloads the window
        await engine.settle(second, total_tokens=0, cost_usd=Decimal(0))
        await engine.store.drain()
        # Not the first call's reservation, held for the lease's ten minutes.
        assert await _counter(engine, key) == (COST_NANOS, 0)
    finally:
        await client.aclose()


def test_an_orphan_settled_after_a_reload_is_charged_once() -> None:
    asyncio.run(_an_orphan_settled_after_a_reload_is_charged_once())


async def _an_orphan_settled_after_a_reload_is_charged_once() -> None:
    engine, demand, client, tenant_id, team_id = await _world()
    try:
        first = await engine.admit(demand, "req_" + uuid.uuid4().hex)
        key = first.checks[0].key
        await _charge(first.request_id, tenant_id, team_id)  # then its worker died
        _fail(engine)
        second = await engine.admit(demand, "req_" + uuid.uuid4().hex)  # reloads the window
        await engine.settle(second, total_tokens=0, cost_usd=Decimal(0))
        # The journal's recovery: charged where its reservation is still held.
        orphan = Release(budget_spend=((key, COST_NANOS),), if_still_reserved=True)
        await engine.release_reserved(orphan, first.request_id)
        assert await _counter(engine, key) == (COST_NANOS, 0)
    finally:
        await client.aclose()


def test_a_lapsed_reservation_of_a_call_the_ledger_holds_is_charged_once_after_a_reload() -> None:
    asyncio.run(_a_lapsed_reservation_of_a_call_the_ledger_holds_is_charged_once_after_a_reload())


async def _a_lapsed_reservation_of_a_call_the_ledger_holds_is_charged_once_after_a_reload() -> None:
    engine, demand, client, tenant_id, team_id = await _world()
    try:
        store = engine.store
        first = await engine.admit(demand, "req_" + uuid.uuid4().hex)
        key = first.checks[0].key
        await client.hset(key, f"r:{first.request_id}", "20000000 1")  # its lease ran out
        await _charge(first.request_id, tenant_id, team_id)  # recorded; its worker died
        second = await engine.admit(demand, "req_" + uuid.uuid4().hex)  # drops the lapsed one
        await engine.settle(second, total_tokens=0, cost_usd=Decimal(0))
        await store.drain()
        _fail(engine)
        third = await engine.admit(demand, "req_" + uuid.uuid4().hex)  # reloads the window
        await engine.settle(third, total_tokens=0, cost_usd=Decimal(0))
        orphan = Release(budget_spend=((key, COST_NANOS),), if_still_reserved=True)
        await engine.release_reserved(orphan, first.request_id)
        assert await _counter(engine, key) == (COST_NANOS, 0)
    finally:
        await client.aclose()

"""A worker reloads its configuration when, and only when, it changed (gateway_site/snapshot.py).

The snapshots used to reload everything every two seconds; now they read one number that a
trigger on every configuration table raises. These tests hold the two halves of that promise: a
change of any kind is seen within the TTL (no table a snapshot reads lacks the trigger), and an
unchanged configuration is not loaded again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import Price, PriceSource
from gateway_site.snapshot import Snapshot, config_generation
from routing.guardrails.table import load_policy_table
from routing.mcp_gateway.table import load_mcp_table
from routing.prompts.registry import load_prompt_table
from routing.table import RoutingTableCache, load_routing_table
from tenants.models import Tenant
from tenants.quotas.table import load_quota_table
from tests.support.world import build_route, build_tenant

pytestmark = pytest.mark.django_db

T = TypeVar("T")


def committed(work: Callable[[], T]) -> T:
    """`work` on a thread of its own, as a worker's database thread runs: autocommit, outside
    the test's transaction (whose writes another thread's connection cannot see)."""

    def run() -> T:
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


_ROUTE: dict[str, Any] = {
    "base_url": "http://127.0.0.1:9/v1",
    "provider": "gen-provider",
    "deployment": "gen-deployment",
    "upstream_model": "mock-gpt",
}

LOADERS: list[Callable[[], Any]] = [
    load_routing_table,
    load_quota_table,
    load_policy_table,
    load_mcp_table,
    load_prompt_table,
]


def _tables_read(load: Callable[[], Any]) -> set[str]:
    seen: set[str] = set()

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.update(re.findall(r'(?:FROM|JOIN)\s+"(\w+)"', sql))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        load()
    return seen


def _tables_with_trigger() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgrelid::regclass::text FROM pg_trigger "
                "WHERE tgname LIKE '%%_config_changed'"
            )
            return {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_config_%'"
        )
        return {row[0] for row in cursor.fetchall()}


def test_every_table_a_snapshot_reads_raises_the_generation() -> None:
    build_tenant("gen", teams=["one"], keys=["k"])
    build_route("gen-route", **_ROUTE)  # in the test's transaction: the loaders read it there
    read = set().union(*(_tables_read(load) for load in LOADERS))
    assert "routing_deployment" in read and "tenants_tenant" in read  # the watch sees queries
    missing = read - _tables_with_trigger()
    assert not missing, f"tables a snapshot reads without the config trigger: {sorted(missing)}"


def test_inserts_updates_bulk_updates_and_deletes_each_raise_it() -> None:
    def generation() -> int:
        value = committed(config_generation)
        assert value is not None
        return value

    before = generation()
    tenant = committed(lambda: Tenant.objects.create(slug="gen-a", name="A"))
    after_insert = generation()
    # A bulk update sends no signal; the trigger sees it all the same.
    committed(lambda: Tenant.objects.filter(pk=tenant.pk).update(name="B"))
    after_update = generation()
    committed(tenant.delete)
    after_delete = generation()
    assert before < after_insert < after_update < after_delete


def test_an_unchanged_configuration_is_not_loaded_again_and_a_change_is() -> None:
    loads = 0

    def load() -> int:
        nonlocal loads
        loads += 1
        return loads

    snapshot: Snapshot[int] = Snapshot(load, ttl_seconds=0.0)

    async def settle() -> int:
        value = await snapshot.get()
        while snapshot._refreshing is not None:  # the background check, if one started
            await asyncio.sleep(0.01)
        return value

    async def scenario() -> list[int]:
        seen = [await settle()]
        for _ in range(5):  # each get after the TTL checks the generation: nothing changed
            seen.append(await settle())
        await asyncio.to_thread(committed, lambda: Tenant.objects.create(slug="gen-b", name="B"))
        await settle()  # this check sees the change and loads
        seen.append(await settle())
        return seen

    assert asyncio.run(scenario()) == [1, 1, 1, 1, 1, 1, 2]


def test_the_routing_table_reloads_when_a_scheduled_price_takes_effect() -> None:
    soon = timezone.now() + timedelta(seconds=1.5)

    def configure() -> None:
        deployment = build_route("priced", **{**_ROUTE, "deployment": "priced-deployment"})
        Price.objects.create(
            deployment=deployment,
            effective_from=soon,
            input_per_mtok=Decimal("7"),
            output_per_mtok=Decimal("9"),
            source=PriceSource.choices[0][0],
        )

    committed(configure)
    cache = RoutingTableCache(ttl_seconds=0.0)

    async def price_now() -> Decimal:
        table = await cache.get()
        while cache._refreshing is not None:
            await asyncio.sleep(0.01)
        table = await cache.get()
        target = table.models["priced"].plan.targets[0]
        return target.input_price_per_mtok

    async def scenario() -> tuple[Decimal, Decimal]:
        before = await price_now()
        await asyncio.sleep(max(0.0, (soon - timezone.now()).total_seconds()) + 0.2)
        await price_now()
        return before, await price_now()

    before, after = asyncio.run(scenario())
    assert before != Decimal("7")
    assert after == Decimal("7")

"""Time admission and settlement in-process, against the real counters (Redis when REDIS_URL is
set): what limits and budgets at every level add to a request, and how many round trips."""

import asyncio
import json
import statistics
import time
import uuid
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from gateway_site.snapshot import Snapshot
from routing.caller import Caller
from routing.core.strategy import RoutePlan
from routing.core.types import Target
from tenants.auth import KeyIdentity
from tenants.quotas import gate
from tenants.quotas.models import EACH_USER
from tenants.quotas.table import BudgetRule, LimitRule, QuotaTable

BIG = 10_000_000_000  # no rule ever refuses: the bench times the checks, not refusals
PAYLOAD = {
    "model": "bench",
    "messages": [{"role": "user", "content": "Say hello to the benchmark in five words."}],
    "max_tokens": 16,
}


def every_level(tenant_id: int, team_id: int, key_id: int) -> QuotaTable:
    """The rules of the bench's scenario 2c (bench/db.py): tenant, team, key, each end user."""

    def limit(scope: str, rpm: bool, tpm: bool, conc: bool) -> LimitRule:
        return LimitRule(
            id=1,
            scope=scope,
            label=scope,
            requests_per_minute=BIG if rpm else None,
            tokens_per_minute=BIG if tpm else None,
            max_concurrent=BIG if conc else None,
            shadow=False,
        )

    def budget(id_: int, scope: str, period: str, **ledger: Any) -> tuple[BudgetRule, ...]:
        rule = BudgetRule(
            id=id_,
            scope=scope,
            label=f"{scope} budget",
            amount_usd=Decimal(BIG),
            period=period,
            timezone="UTC",
            alert_thresholds_pct=(50, 80, 95),
            shadow=False,
            tenant_id=tenant_id,
            team_id=ledger.get("team_id"),
            api_key_id=ledger.get("api_key_id"),
            per_user=scope == "user",
        )
        return (rule,)

    user = ("user", tenant_id, EACH_USER)
    return QuotaTable(
        limits={
            ("tenant", tenant_id): limit("tenant", True, True, True),
            ("team", team_id): limit("team", True, True, False),
            ("key", key_id): limit("key", True, False, True),
            user: limit("user", True, True, False),
        },
        budgets={
            ("tenant", tenant_id): budget(tenant_id * 10 + 1, "tenant", "month"),
            ("team", team_id): budget(tenant_id * 10 + 2, "team", "month", team_id=team_id),
            ("key", key_id): budget(tenant_id * 10 + 3, "key", "week", api_key_id=key_id),
            user: budget(tenant_id * 10 + 4, "user", "day"),
        },
    )


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples.sort()
    return {
        "p50_us": round(statistics.median(samples), 1),
        "p99_us": round(samples[max(0, int(len(samples) * 0.99) - 1)], 1),
    }


class Command(BaseCommand):
    help = "Time admission and settlement against limits and budgets at every level."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--iterations", type=int, default=2000)
        parser.add_argument(
            "--interval-ms",
            type=float,
            default=1.0,
            help="between one admission and the next (the provider's time, then the next call)",
        )
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(
        self, *args: Any, iterations: int, interval_ms: float, as_json: bool, **options: Any
    ) -> None:
        timings = asyncio.run(self._run(iterations, interval_ms / 1000))
        if as_json:
            self.stdout.write(json.dumps(timings))
            return
        for row in timings:
            self.stdout.write(
                f"{row['scenario']}: admit p50 {row['admit']['p50_us']:.0f} µs, "
                f"p99 {row['admit']['p99_us']:.0f} µs; settle p50 {row['settle']['p50_us']:.0f} "
                f"µs, p99 {row['settle']['p99_us']:.0f} µs; {row['round_trips']:.2f} round "
                "trips per request"
                + (
                    f"; in Redis {row['redis_commands_per_request']:.1f} commands per request, "
                    f"{row['redis_us_per_script']:.0f} µs per script"
                    if row.get("redis_us_per_script")
                    else ""
                )
            )

    async def _run(self, iterations: int, pause_s: float) -> list[dict[str, Any]]:
        # A tenant of its own (ids no row has): every run starts from empty counters.
        tenant_id = 2_000_000_000 + uuid.uuid4().int % 100_000_000
        team_id, key_id = tenant_id + 1, tenant_id + 2
        table = every_level(tenant_id, team_id, key_id)
        engine = gate.build_engine()
        engine.table = Snapshot(lambda: table, ttl_seconds=3600, name="bench quota table")
        trips = _count_round_trips(engine.store)
        target = Target(
            deployment_id=1,
            deployment_name="bench-gpt",
            provider_name="bench-mock",
            kind="openai",
            base_url="http://127.0.0.1:1/v1",
            api_key="",
            upstream_model="mock-gpt",
            input_price_per_mtok=Decimal("2.5"),
            output_price_per_mtok=Decimal("10"),
        )
        plan = RoutePlan(alias="bench", targets=(target,), weights=(1,))
        rows = []
        for scenario, key in (("no rules", key_id + 7), ("every level", key_id)):
            identity = KeyIdentity(
                key_id=key,
                key_prefix="gw-bench",
                key_name="bench",
                tenant_id=tenant_id if key == key_id else tenant_id + 9,
                tenant_slug="bench",
                team_id=team_id if key == key_id else team_id + 9,
                team_slug="load",
                allowed_models=None,
                residency_region="",
                expires_at=None,
                revoked=False,
            )
            runtime = SimpleNamespace(quotas=engine)
            admit_us: list[float] = []
            settle_us: list[float] = []
            settling: set[asyncio.Task[None]] = set()

            async def settle(admitted: gate.Admitted, settle_us: list[float]) -> None:
                # As the proxy does: in the background, after the record is written.
                began = time.perf_counter()
                await engine.settle(admitted.admission, total_tokens=20, cost_usd=Decimal("0.0001"))
                settle_us.append((time.perf_counter() - began) * 1e6)

            for i in range(50 + iterations):  # the first 50 warm up (and seed the windows)
                caller = Caller(
                    runtime=runtime,
                    identity=identity,
                    headers={},
                    request_id=f"req_bench{i}",
                    end_user="bench-user",
                )
                if i == 50:
                    before = await _redis_stats(engine.store)
                    trips[0] = 0
                    settle_us.clear()
                began = time.perf_counter()
                admitted = await gate.admit(caller, plan, PAYLOAD)
                if i >= 50:
                    admit_us.append((time.perf_counter() - began) * 1e6)
                task = asyncio.ensure_future(settle(admitted, settle_us))
                settling.add(task)
                task.add_done_callback(settling.discard)
                await asyncio.sleep(pause_s)  # the time the provider takes, and the next request
            while settling:
                await asyncio.gather(*settling)
            round_trips = trips[0] / iterations  # admission and settlement
            redis = _redis_work(before, await _redis_stats(engine.store), iterations)
            rows.append(
                {
                    "scenario": f"{scenario} ({engine.store_name})",
                    "admit": _percentiles(admit_us),
                    "settle": _percentiles(settle_us),
                    "round_trips": round_trips,
                    **redis,
                }
            )
        return rows


async def _redis_stats(store: Any) -> dict[str, dict[str, float]]:
    """Redis's own count of the commands it ran, and their time (`INFO commandstats`)."""
    client = getattr(store, "client", None)
    if client is None:
        return {}
    stats: dict[str, dict[str, float]] = await client.info("commandstats")
    return stats


def _redis_work(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], requests: int
) -> dict[str, float]:
    """What the requests cost Redis: commands run inside the scripts, per request, and each
    script's time in Redis (anything else using the same Redis meanwhile counts too)."""
    if not after:
        return {}

    def delta(name: str, field: str) -> float:
        return after.get(name, {}).get(field, 0) - before.get(name, {}).get(field, 0)

    scripts = delta("cmdstat_evalsha", "calls") + delta("cmdstat_eval", "calls")
    script_us = delta("cmdstat_evalsha", "usec") + delta("cmdstat_eval", "usec")
    outside = {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_info", "cmdstat_script"}
    inner = sum(delta(name, "calls") for name in after if name not in outside)
    return {
        "redis_commands_per_request": inner / requests,
        "redis_us_per_script": script_us / scripts if scripts else 0.0,
    }


def _count_round_trips(store: Any) -> list[int]:
    """Counts the commands and pipelines the store sends (each is one round trip)."""
    count = [0]
    client = getattr(store, "client", None)
    if client is None:
        return count
    send = client.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        count[0] += 1
        return await send(*args, **options)

    client.execute_command = counted
    return count

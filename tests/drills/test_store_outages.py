"""Drill: Redis and PostgreSQL go away under steady load, and come back.

A live gateway serves two tenants at a steady rate: one with a budget (its policy: budgets fail
closed, the default), one with a rate limit only (limits fail open, the default). Three outages,
each `OUTAGE_S` long (30 s; GATEWAY_DRILL_OUTAGE_SECONDS shortens it for a quick run):

- Redis hangs (SIGSTOP): every request is answered within the store timeout of what it takes
  otherwise; the budgeted tenant gets 503 `quota_unavailable`, the other is served unchecked;
- Redis stops (and restarts empty on the same port): the same;
- PostgreSQL stops: nothing is answered without its record: 503 `audit_unavailable`, promptly;
  a call that was already at the provider is recorded as soon as the database is back.

After each: everything is served again within `RECOVERY_S` of the service's return and /readyz
said so; every call the provider received has exactly one audit record; the budget's counter in
Redis equals its ledger, with nothing left reserved.

The gateway's Redis and PostgreSQL are the drill's own (a redis-server and a PostgreSQL cluster on
free ports, in a temporary folder): the machine's shared services are never touched.
Run alone: `pytest tests/drills/test_store_outages.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from mock_provider.config import MockConfig
from mock_provider.testing import MockServer, run_mock_server
from tests.support.live import ROOT, LiveGateway, free_port, start_gateway, wait_for_config
from tests.support.spend import redis_budget_nanos

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

OUTAGE_S = float(os.environ.get("GATEWAY_DRILL_OUTAGE_SECONDS", "30"))
STORE_TIMEOUT_S = 0.5  # GATEWAY_QUOTA_STORE_TIMEOUT_SECONDS of the drill's gateway
RECOVERY_S = 10.0  # everything served again this long after the service is back
RATE = 20  # requests a second, alternating between the two tenants
WARM_S = 3.0
PROVIDER_MS = 20
ROUTE = "outage-chat"
BUDGETED, LIMITED = "outage-budget", "outage-limits"

# --- the drill's own servers ----------------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class OwnRedis:
    """A redis-server of the drill's own, without persistence: a restart comes back empty."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a hung server cannot act on SIGTERM
            self.process.terminate()
            self.process.wait(timeout=10)

    def hang(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class OwnPostgres:
    """A PostgreSQL cluster of the drill's own (trust auth, no fsync: nothing here must last)."""

    def __init__(self, folder: Path, bindir: Path) -> None:
        self.folder = folder
        self.bindir = bindir
        self.port = free_port()
        self.data = folder / "data"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        # initdb refuses to run as root: the cluster belongs to the postgres user then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        initdb = str(self.bindir / "initdb")
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "postgres.log")
        pg_ctl = str(self.bindir / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        deadline = time.monotonic() + 20
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        pg_ctl = str(self.bindir / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()


# Run by `manage.py shell` against the drill's database: the two tenants, their key, the route.
_SETUP = """
import json, os
from decimal import Decimal
from tenants.quotas import services as quotas
from routing import services as routing
from tenants import services as tenants
from tests.support.world import build_tenant

provider = routing.provider_upsert(
    name="outage-llm", kind="openai", base_url=os.environ["DRILL_MOCK_URL"] + "/v1",
    credential="sk-outage", region="",
)
deployment = routing.deployment_upsert(
    name="outage-gpt", provider=provider, upstream_model="outage-gpt-1",
    input_price_per_mtok=Decimal(1000), output_price_per_mtok=Decimal(1000),
)
routing.route_upsert(alias=os.environ["DRILL_ROUTE"], description="", deployments=[deployment])
keys = {}
budgeted = os.environ["DRILL_BUDGETED"]
for slug in (budgeted, os.environ["DRILL_LIMITED"]):
    built = build_tenant(slug, name=slug, teams=["desk"], keys=[slug + "-app"])
    tenant, team = built.tenant, built.team
    key, material = built.keys[slug + "-app"].api_key, built.keys[slug + "-app"]
    if slug == budgeted:
        quotas.budget_set(tenant=tenant, scope="team", team=team, amount_usd=Decimal(100000))
    else:
        quotas.rate_limit_set(
            tenant=tenant, scope="key", api_key=key, requests_per_minute=1000000
        )
    keys[slug] = material.plaintext
print("KEYS=" + json.dumps(keys))
"""


def _manage(database_url: str, *args: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "GATEWAY_EGRESS_ALLOW_LOOPBACK": "true",  # the mock provider is on 127.0.0.1
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@dataclass
class Stage:
    redis: OwnRedis
    postgres: OwnPostgres
    provider: MockServer
    gateway: LiveGateway
    keys: dict[str, str]
    timings: dict[str, float]


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    bindir = _postgres_bin()
    if bindir is None or shutil.which("redis-server") is None:
        pytest.skip("the outage drill needs PostgreSQL's server binaries and redis-server")
    folder = Path(tempfile.mkdtemp(prefix="outage-drill-"))
    folder.chmod(0o755)
    own_redis, own_postgres = OwnRedis(folder), OwnPostgres(folder, bindir)
    timings: dict[str, float] = {}
    try:
        begun = time.monotonic()
        own_redis.start()
        own_postgres.init()
        own_postgres.start()
        timings["cluster_start_s"] = time.monotonic() - begun
        begun = time.monotonic()
        _manage(own_postgres.url, "migrate", "--verbosity", "0")
        timings["migrate_s"] = time.monotonic() - begun
        stack = contextlib.ExitStack()
        with (
            stack,
            run_mock_server(MockConfig(latency_ms=PROVIDER_MS, log_limit=100_000)) as provider,
        ):
            out = _manage(
                own_postgres.url,
                "shell",
                "-c",
                _SETUP,
                DRILL_MOCK_URL=provider.base_url,
                DRILL_ROUTE=ROUTE,
                DRILL_BUDGETED=BUDGETED,
                DRILL_LIMITED=LIMITED,
            )
            keys = json.loads(out.split("KEYS=", 1)[1])
            gateway = start_gateway(
                output=stack.enter_context((folder / "gateway.log").open("wb")),
                DATABASE_URL=own_postgres.url,
                REDIS_URL=own_redis.url,
                GATEWAY_QUOTA_STORE_TIMEOUT_SECONDS=STORE_TIMEOUT_S,
                GATEWAY_ROUTES_CACHE_SECONDS=1,
            )
            try:
                for key in keys.values():
                    wait_for_config(gateway, key, ROUTE)
                print(f"\n[setup] {timings}")
                yield Stage(own_redis, own_postgres, provider, gateway, keys, timings)
            finally:
                gateway.stop()
    finally:
        own_redis.stop()
        if own_postgres.data.exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                own_postgres.stop()
        if not os.environ.get("GATEWAY_DRILL_KEEP"):  # its gateway.log, postgres.log
            shutil.rmtree(folder, ignore_errors=True)


# --- steady load --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    marker: str
    tenant: str
    at: float  # seconds since the load began
    latency: float
    status: int
    code: str


@dataclass
class Run:
    """One outage under load: what was sent, what /readyz said, when the service left/returned."""

    tag: str
    sent: list[Sent] = field(default_factory=list)
    ready: list[tuple[float, int, dict[str, str]]] = field(default_factory=list)
    down_at: float = 0.0
    back_at: float = 0.0


async def _load(stage: Stage, run: Run, stop: threading.Event, begun: float) -> None:
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(i: int) -> None:
            tenant = BUDGETED if i % 2 == 0 else LIMITED
            marker = f"{run.tag}{i:05d}"
            body = {
                "model": ROUTE,
                "messages": [{"role": "user", "content": marker}],
                "max_tokens": 8,
            }
            at = time.monotonic()
            try:
                response = await client.post(
                    stage.gateway.api_url + "/chat/completions",
                    headers={"authorization": f"Bearer {stage.keys[tenant]}"},
                    json=body,
                )
                status = response.status_code
                code = "" if status == 200 else str(response.json()["error"].get("code") or "")
            except httpx.HTTPError as error:
                status, code = 0, type(error).__name__
            run.sent.append(Sent(marker, tenant, at - begun, time.monotonic() - at, status, code))

        async def readiness() -> None:
            while not stop.is_set():
                at = time.monotonic()
                try:
                    answer = await client.get(stage.gateway.url + "/readyz", timeout=10)
                    run.ready.append((at - begun, answer.status_code, answer.json()["checks"]))
                except httpx.HTTPError:
                    run.ready.append((at - begun, 0, {}))
                await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - at)))

        tasks = [asyncio.ensure_future(readiness())]
        i = 0
        while not stop.is_set():
            tasks.append(asyncio.ensure_future(one(i)))
            i += 1
            # Steady: the i-th request leaves at begun + i / RATE, whatever the answers take.
            await asyncio.sleep(max(0.0, begun + i / RATE - time.monotonic()))
        await asyncio.gather(*tasks)


def outage_under_load(stage: Stage, leave: Callable[[], None], back: Callable[[], None]) -> Run:
    """WARM_S of load, then the outage for OUTAGE_S, then RECOVERY_S + 3 s of load."""
    run = Run(tag=f"o-{uuid.uuid4().hex[:6]}-")
    stop = threading.Event()
    begun = time.monotonic()
    thread = threading.Thread(
        target=asyncio.run, args=(_load(stage, run, stop, begun),), daemon=True
    )
    thread.start()
    try:
        time.sleep(WARM_S)
        run.down_at = time.monotonic() - begun
        leave()
        time.sleep(OUTAGE_S)
        back()
        run.back_at = time.monotonic() - begun
        time.sleep(RECOVERY_S + 3)
    finally:
        stop.set()
        thread.join(timeout=90)
    assert not thread.is_alive(), "requests still unanswered 90 s after the load stopped"
    return run


# --- what the drill checks ----------------------------------------------------------------


def seen_by_provider(provider: MockServer, tag: str) -> Counter[str]:
    markers: Counter[str] = Counter()
    for entry in list(provider.app.requests):
        for message in (entry.get("body") or {}).get("messages") or ():
            content = message.get("content")
            if isinstance(content, str) and content.startswith(tag):
                markers[content] += 1
    return markers


def recorded(stage: Stage, tag: str) -> Counter[str]:
    rows = stage.postgres.query(
        "SELECT request_body->'messages'->0->>'content' FROM audit_auditrecord"
        " WHERE request_body->'messages'->0->>'content' LIKE %s",
        tag + "%",
    )
    return Counter(marker for (marker,) in rows)


def budget_counter(stage: Stage) -> tuple[int, int]:
    """(spent, still reserved) in nano-USD, from Redis, for the budgeted tenant's budget."""
    ((budget_id,),) = stage.postgres.query(
        "SELECT b.id FROM quotas_budget b JOIN tenants_tenant t ON t.id = b.tenant_id"
        " WHERE t.slug = %s",
        BUDGETED,
    )
    return redis_budget_nanos(redis.Redis.from_url(stage.redis.url), f"gw:b:{budget_id}:*")


def ledger_nanos(stage: Stage) -> int:
    ((total,),) = stage.postgres.query(
        "SELECT coalesce(sum(s.amount_usd), 0) FROM quotas_spendentry s"
        " JOIN tenants_tenant t ON t.id = s.tenant_id WHERE t.slug = %s",
        BUDGETED,
    )
    return int(total * 10**9)


def report(name: str, run: Run) -> dict[str, Any]:
    """The figures of one run, printed (pytest -s shows them) and returned for the asserts."""
    before = [s for s in run.sent if s.at + s.latency < run.down_at]
    overlapping = [s for s in run.sent if s.at < run.back_at and s.at + s.latency > run.down_at]
    after = [s for s in run.sent if s.at >= run.back_at]
    failing_after = [s.at - run.back_at for s in after if s.status != 200]
    base = statistics.median(s.latency for s in before) if before else 0.0
    not_ready = [t for t, status, _ in run.ready if status != 200 and t >= run.back_at]
    figures = {
        "requests": len(run.sent),
        "statuses": dict(Counter(f"{s.tenant} {s.status} {s.code}" for s in run.sent)),
        "during": dict(Counter(f"{s.tenant} {s.status} {s.code}" for s in overlapping)),
        "baseline_p50_ms": round(base * 1000, 1),
        "baseline_max_ms": round(max((s.latency for s in before), default=0) * 1000, 1),
        "max_added_ms_during": round((max(s.latency for s in overlapping) - base) * 1000, 1),
        "recovered_after_s": round(max(failing_after, default=0.0), 2),
        "ready_again_after_s": round(max(not_ready, default=run.back_at) - run.back_at, 2),
        "not_ready_during": sum(
            1 for t, status, _ in run.ready if run.down_at + 1 < t < run.back_at and status != 200
        ),
        "readyz_during": sum(1 for t, _, _ in run.ready if run.down_at + 1 < t < run.back_at),
    }
    print(f"\n[{name}] " + json.dumps(figures, indent=1))
    slowest = sorted(overlapping, key=lambda s: -s.latency)[:5]
    print(
        "slowest during:",
        [(round(s.at - run.down_at, 2), round(s.latency, 3), s.status, s.tenant) for s in slowest],
    )
    return figures


def settled_counters(stage: Stage, timeout: float = 10.0) -> tuple[int, int, int]:
    """(Redis spent, Redis reserved, ledger) once nothing is reserved any more."""
    deadline = time.monotonic() + timeout
    while True:
        spent, reserved = budget_counter(stage)
        if reserved == 0 or time.monotonic() > deadline:
            return spent, reserved, ledger_nanos(stage)
        time.sleep(0.2)


def check_accounts(stage: Stage, run: Run) -> None:
    """Every provider call has exactly one record; the budget counter equals the ledger."""
    deadline = time.monotonic() + RECOVERY_S
    while True:
        provider, records = seen_by_provider(stage.provider, run.tag), recorded(stage, run.tag)
        unrecorded = set(provider) - set(records)
        if not unrecorded or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    twice = {m: n for m, n in records.items() if n > 1}
    called_twice = {m: n for m, n in provider.items() if n > 1}
    spent, reserved, ledger = settled_counters(stage)
    print(
        f"provider calls {sum(provider.values())}, records {sum(records.values())}, "
        f"unrecorded calls {len(unrecorded)}, records twice {len(twice)}; "
        f"redis spent {spent} reserved {reserved}, ledger {ledger} (nano-USD)"
    )
    assert not unrecorded, f"{len(unrecorded)} provider calls without a record"
    assert not twice and not called_twice
    assert reserved == 0
    assert spent == ledger


# --- the outages ----------------------------------------------------------------------------


def within(run: Run, tenant: str) -> list[Sent]:
    """The tenant's requests sent and answered while the service was away (its first second
    aside: requests already past their checks when it left)."""
    return [
        s
        for s in run.sent
        if s.tenant == tenant and s.at > run.down_at + 1 and s.at + s.latency < run.back_at
    ]


def check_recovery(run: Run, figures: dict[str, Any]) -> None:
    assert figures["recovered_after_s"] <= RECOVERY_S, figures
    assert figures["ready_again_after_s"] <= RECOVERY_S, figures
    assert figures["not_ready_during"] > 0, "/readyz never reported the outage"
    after = [s for s in run.sent if s.at > run.back_at + RECOVERY_S]
    assert after and all(s.status == 200 for s in after)


def check_redis_outage(run: Run, figures: dict[str, Any]) -> None:
    allowed = {(200, ""), (503, "quota_unavailable")}
    assert {(s.status, s.code) for s in run.sent} <= allowed, figures["statuses"]
    # Budgets fail closed, limits fail open (the default policy of each tenant).
    assert {(s.status, s.code) for s in within(run, BUDGETED)} == {(503, "quota_unavailable")}
    assert {s.status for s in within(run, LIMITED)} == {200}
    assert all(s.status == 200 for s in run.sent if s.tenant == LIMITED)
    # Each request waits on the store at most once, for at most its timeout.
    assert figures["max_added_ms_during"] < (STORE_TIMEOUT_S + 0.75) * 1000, figures
    check_recovery(run, figures)


def test_a_hung_redis_costs_each_request_at_most_the_store_timeout(stage: Stage) -> None:
    run = outage_under_load(stage, stage.redis.hang, stage.redis.resume)
    figures = report("redis hung (SIGSTOP)", run)
    check_accounts(stage, run)
    check_redis_outage(run, figures)


def test_a_stopped_redis_fails_budgets_closed_and_limits_open(stage: Stage) -> None:
    run = outage_under_load(stage, stage.redis.stop, stage.redis.start)
    figures = report("redis stopped", run)
    check_accounts(stage, run)
    check_redis_outage(run, figures)


def test_a_stopped_database_serves_nothing_unrecorded(stage: Stage) -> None:
    run = outage_under_load(stage, stage.postgres.stop, stage.postgres.start)
    figures = report("postgres stopped", run)
    check_accounts(stage, run)
    late = stage.postgres.query(
        "SELECT count(*) FROM audit_auditrecord WHERE error_type = 'audit_unavailable'"
        " AND request_body->'messages'->0->>'content' LIKE %s",
        run.tag + "%",
    )[0][0]
    print(f"records written late (calls at the provider when the database went): {late}")
    allowed = {(200, ""), (503, "audit_unavailable")}
    assert {(s.status, s.code) for s in run.sent} <= allowed, figures["statuses"]
    for tenant in (BUDGETED, LIMITED):
        assert {(s.status, s.code) for s in within(run, tenant)} == {(503, "audit_unavailable")}
    # Refused at once, not after waiting on the database: only the requests that were
    # already waiting for a connection when it went wait for the pool's timeout (10 s).
    slow = [s for s in run.sent if s.at > run.down_at + 1 and s.at < run.back_at]
    assert max(s.latency for s in slow) < 1.0, figures
    check_recovery(run, figures)

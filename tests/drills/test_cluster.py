"""Drill: four gateway processes behind HAProxy on a 3-master Redis Cluster hold a rate limit
within 1% and a budget within one reservation, share what they learn of a provider's cooldown,
and lose no audit record when a gateway and a Redis master are killed under load.

The processes, HAProxy, a Celery worker and beat are started by `scripts/run_cluster.py`
exactly as docs/deployment.md says, on PostgreSQL and a Redis Cluster (REDIS_CLUSTER=true), with
the mock provider upstream. The figures go to docs/benchmarks.md ("Several processes").
Run alone: `pytest tests/drills/test_cluster.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from django.db.models import Sum

from audit.models import AuditRecord, AuditStatus
from routing import services as routing
from tenants.quotas import services as quotas
from tenants.quotas.models import SpendEntry
from tests.support import live
from tests.support.live import ROOT, free_port, wait_for_config
from tests.support.redis_cluster import RedisClusterNodes, cluster_nodes
from tests.support.world import Key, build_route, build_tenant

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        os.environ.get("GATEWAY_SKIP_REDIS_CLUSTER") == "1", reason="GATEWAY_SKIP_REDIS_CLUSTER=1"
    ),
    pytest.mark.skipif(
        shutil.which("haproxy") is None,
        reason="HAProxy is not installed and could not be (scripts/ensure_services.sh installs"
        " Debian's 'haproxy')",
    ),
]

GATEWAYS = 4
RATE_LIMIT = 300  # requests a minute, for one key, across all four processes
PRICE_PER_MTOK = Decimal(1000)  # $1 per 1,000 tokens each way
MAX_TOKENS = 40
CLIENTS = 16


@dataclass
class Tenants:
    limited: str  # a key limited to RATE_LIMIT requests a minute
    treasury: str  # a key of a team with $1 of its $5 monthly budget left
    treasury_team_id: int
    load: str  # a key with a limit far above the load (its counters live on one Redis master)
    load_tenant_id: int
    open: str  # a key of the cooldown route's tenant


@pytest.fixture(scope="module")
def long_429() -> Iterator[Any]:
    """Rate-limits every request and asks for 30 s of quiet."""
    from mock_provider.config import MockConfig
    from mock_provider.testing import run_mock_server

    with run_mock_server(MockConfig(status=429, fail_rate=1.0, retry_after=30)) as server:
        yield server


@pytest.fixture(scope="module")
def mock_server() -> Iterator[Any]:
    """The drill's own provider: its thousands of calls must not fill the shared mock's request
    log, which later tests read from (it keeps the last 2,000)."""
    from mock_provider.testing import run_mock_server

    with run_mock_server() as server:
        yield server


# Committed before any test's transaction, so that the gateway processes see it.
@pytest.fixture(scope="module")
def drill_tenants(
    django_db_setup: None, django_db_blocker: Any, mock_server: Any, long_429: Any
) -> Tenants:
    with django_db_blocker.unblock():
        build_route(
            "cluster-chat", base_url=mock_server.base_url + "/v1", provider="cluster-llm",
            deployment="cluster-gpt", upstream_model="cluster-gpt-1",
            input_price=PRICE_PER_MTOK, output_price=PRICE_PER_MTOK, region="",
        )  # fmt: skip
        busy = routing.provider_upsert(
            name="cluster-429", kind="openai", base_url=long_429.base_url + "/v1",
            credential="sk-busy", region="",
        )  # fmt: skip
        ok = routing.provider_upsert(
            name="cluster-ok", kind="openai", base_url=mock_server.base_url + "/v1",
            credential="sk-ok", region="",
        )  # fmt: skip
        routing.route_upsert(
            alias="cluster-cooling",
            description="",
            deployments=[
                routing.deployment_upsert(
                    name=name,
                    provider=provider,
                    upstream_model="mock-gpt",
                    input_price_per_mtok=Decimal(1),
                    output_price_per_mtok=Decimal(1),
                )
                for name, provider in (("cluster-busy", busy), ("cluster-healthy", ok))
            ],
        )
        co = build_tenant(
            "cluster-drill",
            teams=["limits", "treasury", "load"],
            keys=[
                Key("limited", team="limits"),
                Key("treasury-app", team="treasury"),
                Key("load-app", team="load"),
                Key("open-app", team="limits"),
            ],
        )
        quotas.rate_limit_set(
            tenant=co.tenant, scope="key", api_key=co.keys["limited"].api_key,
            requests_per_minute=RATE_LIMIT,
        )  # fmt: skip
        quotas.rate_limit_set(
            tenant=co.tenant, scope="key", api_key=co.keys["load-app"].api_key,
            requests_per_minute=1_000_000,
        )  # fmt: skip
        treasury = co.teams["treasury"]
        quotas.budget_set(tenant=co.tenant, scope="team", team=treasury, amount_usd=Decimal(5))
        SpendEntry.objects.create(
            tenant=co.tenant, team=treasury, amount_usd=Decimal(4), occurred_at=datetime.now(UTC)
        )
        return Tenants(
            limited=co.key("limited"),
            treasury=co.key("treasury-app"),
            treasury_team_id=treasury.id,
            load=co.key("load-app"),
            load_tenant_id=co.tenant.id,
            open=co.key("open-app"),
        )


@dataclass
class Deployment:
    balancer: str
    gateways: dict[str, dict[str, Any]]  # name → url, pid
    redis_master: int  # the port of the master that holds the load tenant's counters
    process: subprocess.Popen[bytes]
    state: Path
    started_in_s: float


def _cluster_roles(nodes: RedisClusterNodes, tenant_id: int) -> tuple[int, str]:
    """The master holding the tenant's slot, and a node of another shard for REDIS_URL (the
    gateways learn the whole cluster from it; it must outlive the drill's failover)."""
    nodes.wait_ok()
    client = redis.RedisCluster.from_url(nodes.url)
    try:
        node = client.get_node_from_key(f"{{t{tenant_id}}}")  # type: ignore[no-untyped-call]
        master = int(node.port)
    finally:
        client.close()
    shard = {master, nodes.replica_of(master)}
    other = next(port for port in nodes.roles() if port not in shard)
    return master, f"redis://127.0.0.1:{other}/0"


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """The drill's own cluster: it kills a master, which must not leave the suite's shared cluster
    with a shard that has no replica (the other cluster tests run after this drill)."""
    yield from cluster_nodes()


@pytest.fixture(scope="module")
def deployment(drill_tenants: Tenants, redis_cluster: RedisClusterNodes) -> Iterator[Deployment]:
    master, redis_url = _cluster_roles(redis_cluster, drill_tenants.load_tenant_id)
    state = Path(tempfile.mkdtemp(prefix="gw-cluster-drill-"))
    env = {
        **os.environ,
        # The production settings of docs/deployment.md that apply on one machine.
        "DATABASE_URL": live.test_database_url(),
        "REDIS_URL": redis_url,
        "REDIS_CLUSTER": "true",
        # Celery's own single Redis (its transport does not speak the cluster protocol).
        "CELERY_BROKER_URL": os.environ.get("REDIS_URL") or "memory://",
        "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
        "GATEWAY_JOURNAL_SWEEP_SECONDS": "2",
        # The drill's own: the mock providers are on loopback; quick config reloads.
        "GATEWAY_EGRESS_ALLOW_LOOPBACK": "true",
        "GATEWAY_ROUTES_CACHE_SECONDS": "0.5",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable, "scripts/run_cluster.py", "--gateways", str(GATEWAYS),
            "--port", str(free_port()), "--first-port", str(_consecutive_ports()),
            # The test run has migrated the test database already.
            "--state", str(state), "--no-migrate",
        ],
        cwd=ROOT, env=env, stdout=open(state / "run_cluster.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (state / "cluster.json").exists():
            if process.poll() is not None:
                raise RuntimeError(
                    "scripts/run_cluster.py exited: " + (state / "run_cluster.log").read_text()
                )
            assert time.monotonic() < deadline, "the deployment did not start in 240 s"
            time.sleep(0.2)
        described = json.loads((state / "cluster.json").read_text())
        started_in = time.monotonic() - started
        print(f"four gateways, HAProxy, Celery worker and beat ready in {started_in:.1f}s")
        yield Deployment(
            balancer=described["balancer"],
            gateways={g["name"]: g for g in described["gateways"]},
            redis_master=master,
            process=process,
            state=state,
            started_in_s=started_in,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(state, ignore_errors=True)


def _consecutive_ports() -> int:
    """A first port whose next GATEWAYS - 1 are free too."""
    for start in range(41_000 + os.getpid() % 1000 * 8, 60_000, 8):
        if all(_free(port) for port in range(start, start + GATEWAYS)):
            return start
    raise RuntimeError("no four consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _chat(client: httpx.Client, url: str, key: str, model: str, text: str) -> httpx.Response:
    return client.post(
        url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": text}],
              "max_tokens": MAX_TOKENS},
        timeout=60,
    )  # fmt: skip


def _everywhere(deployment: Deployment, key: str, model: str) -> None:
    # A fresh process's first calls load what it needs (tokenizers, tables): give them time.
    for gateway in deployment.gateways.values():
        wait_for_config(gateway["url"], key, model, timeout=60, request_timeout=30)


def _fan_out(count: int, call: Any, workers: int = CLIENTS) -> list[Any]:
    """`count` calls of `call(client, i)` over `workers` threads, each with its own
    keep-alive connection to the balancer."""
    results: list[Any] = [None] * count
    next_index = iter(range(count))
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client() as client:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                try:
                    results[i] = call(client, i)
                except (httpx.HTTPError, ValueError) as error:  # no answer, or not the API's
                    results[i] = (0, repr(error))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_rate_limit_holds_within_one_percent_across_four_processes(
    deployment: Deployment, drill_tenants: Tenants, record_property: Any
) -> None:
    _everywhere(deployment, drill_tenants.limited, "cluster-chat")

    def ask(client: httpx.Client, i: int) -> tuple[int, str]:
        answer = _chat(client, deployment.balancer, drill_tenants.limited, "cluster-chat", f"q{i}")
        return answer.status_code, answer.headers.get("x-gateway-process", "")

    began = time.monotonic()
    results = _fan_out(RATE_LIMIT * 3 // 2, ask)
    took = time.monotonic() - began
    statuses = Counter(status for status, _ in results)
    by_process = Counter(process for status, process in results if status == 200)
    observed = (
        f"rate limit {RATE_LIMIT}/min: {statuses[200]} admitted of {len(results)} in {took:.1f}s "
        f"({len(results) / took:.0f} requests/s through HAProxy), by process {dict(by_process)}"
    )
    print(observed)
    record_property("observed", observed)
    assert took < 50  # all inside one window
    assert abs(statuses[200] - RATE_LIMIT) <= RATE_LIMIT // 100
    assert set(statuses) == {200, 429}, [r for r in results if r[0] not in (200, 429)][:3]
    assert len(by_process) == GATEWAYS  # every process took its share


def test_a_budget_is_never_overspent_by_more_than_one_reservation(
    deployment: Deployment, drill_tenants: Tenants, django_db_blocker: Any, record_property: Any
) -> None:
    _everywhere(deployment, drill_tenants.treasury, "cluster-chat")

    def ask(client: httpx.Client, i: int) -> tuple[int, str]:
        answer = _chat(
            client, deployment.balancer, drill_tenants.treasury, "cluster-chat",
            f"Settle invoice {i} for the quarter",
        )  # fmt: skip
        if answer.status_code == 200:
            return 200, answer.headers["x-request-id"]
        return answer.status_code, answer.json()["error"]["code"]

    results = _fan_out(200, ask, workers=32)
    served = [rid for status, rid in results if status == 200]
    refused = {(status, code) for status, code in results if status != 200}
    assert served and refused == {(429, "budget_exceeded")}, refused
    with django_db_blocker.unblock():
        records = list(AuditRecord.objects.filter(request_id__in=served))
        spent = SpendEntry.objects.filter(team_id=drill_tenants.treasury_team_id).aggregate(
            total=Sum("amount_usd")
        )["total"]
    assert len(records) == len(served)
    largest = max(Decimal(r.quota["reserved_usd"]) for r in records)
    observed = f"budget $5.00: spent ${spent:.4f} after {len(served)} calls, one reservation ${largest:.4f}"
    print(observed)
    record_property("observed", observed)
    assert Decimal(4) < spent <= Decimal(5) + largest


def test_a_cooldown_one_process_learns_is_honoured_by_the_others(
    deployment: Deployment, drill_tenants: Tenants, long_429: Any
) -> None:
    _everywhere(deployment, drill_tenants.open, "cluster-cooling")
    names = sorted(deployment.gateways)
    asked = len(long_429.requests())
    with httpx.Client() as client:
        first = deployment.gateways[names[0]]["url"]
        answer = _chat(client, first, drill_tenants.open, "cluster-cooling", "hello")
        learned_at = time.monotonic()
        assert answer.status_code == 200  # failed over to the healthy deployment
        assert len(long_429.requests()) == asked + 1  # after the busy one's 429
        time.sleep(max(0.0, 1.0 - (time.monotonic() - learned_at)))
        for name in names[1:]:
            url = deployment.gateways[name]["url"]
            answer = _chat(client, url, drill_tenants.open, "cluster-cooling", "hello")
            assert answer.status_code == 200
    # The three others went straight to the healthy deployment: none asked the busy one.
    assert len(long_429.requests()) == asked + 1


def _load_for(seconds: float, url: str, key: str) -> tuple[int, Counter[int], float]:
    """CLIENTS clients asking as fast as they are answered: (200s, statuses, seconds)."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    began = time.monotonic()

    def client_loop(n: int) -> None:
        with httpx.Client() as client:
            i = 0
            while time.monotonic() - began < seconds:
                i += 1
                status = _chat(client, url, key, "cluster-chat", f"bench {n}-{i}").status_code
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses[200], statuses, time.monotonic() - began


def test_throughput_of_one_process_and_of_four_behind_haproxy(
    deployment: Deployment, drill_tenants: Tenants, record_property: Any
) -> None:
    _everywhere(deployment, drill_tenants.load, "cluster-chat")
    one = deployment.gateways[sorted(deployment.gateways)[0]]["url"]
    figures = []
    for label, url in (("one process", one), ("four behind HAProxy", deployment.balancer)):
        served, statuses, took = _load_for(4, url, drill_tenants.load)
        assert set(statuses) == {200}, statuses
        figures.append(f"{label}: {served / took:.0f} requests/s")
    observed = f"{CLIENTS} clients, audit on: " + ", ".join(figures)
    print(observed)
    record_property("observed", observed)


@dataclass
class _Outcome:
    served: list[str] = field(default_factory=list)  # request ids of the 200s
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # status, process, detail


def test_killing_a_gateway_and_a_redis_master_during_load_loses_no_record(
    deployment: Deployment,
    drill_tenants: Tenants,
    redis_cluster: RedisClusterNodes,
    django_db_blocker: Any,
    record_property: Any,
) -> None:
    _everywhere(deployment, drill_tenants.load, "cluster-chat")
    victim = sorted(deployment.gateways)[-1]
    stop = threading.Event()
    outcome = _Outcome()
    lock = threading.Lock()

    def client_loop(n: int) -> None:
        with httpx.Client() as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    answer = _chat(
                        client, deployment.balancer, drill_tenants.load, "cluster-chat",
                        f"load {n}-{i}",
                    )  # fmt: skip
                except httpx.HTTPError as error:
                    # HAProxy closes the client's connection without an answer when a process
                    # dies on a connection it had reused: that call was the killed one's.
                    with lock:
                        outcome.failed.append((0, f"t={time.monotonic():.3f}", repr(error)))
                    continue
                with lock:
                    if answer.status_code == 200:
                        outcome.served.append(answer.headers["x-request-id"])
                    else:
                        process = answer.headers.get("x-gateway-process", "")
                        outcome.failed.append((answer.status_code, process, answer.text[:200]))

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    before_kill = len(outcome.served)
    gateway_killed_at = time.monotonic()
    os.kill(deployment.gateways[victim]["pid"], signal.SIGKILL)
    time.sleep(1)
    master = redis_cluster.processes[deployment.redis_master]
    master.send_signal(signal.SIGKILL)
    master.wait()
    killed_at = time.monotonic()
    time.sleep(8)  # the cluster promotes the replica within ~3 s
    stop.set()
    for thread in threads:
        thread.join()
    after = len(outcome.served)

    with django_db_blocker.unblock():
        committed = AuditRecord.objects.filter(request_id__in=outcome.served).count()
    observed = (
        f"{victim} and a Redis master killed under {CLIENTS} clients: {after} served "
        f"({before_kill} before), {committed} of them recorded, {len(outcome.failed)} failed"
    )
    print(observed, outcome.failed)
    record_property("observed", observed)
    # What the balancer saw: the killed process going down, and any process unready while
    # the Redis master failed over (then the `live` backend served).
    log = (deployment.state / "haproxy.log").read_text(errors="replace").splitlines()
    seen = [line for line in log if " is DOWN" in line or " is UP" in line or "no server" in line]
    print("HAProxy:", *seen, sep="\n  ")
    assert committed == len(outcome.served)  # every 200 a client got has its record
    # Only the killed process's calls in flight failed: answered by HAProxy on its behalf, or
    # cut as it died; at most one per client.
    for status, process, detail in outcome.failed:
        if status:
            assert process == victim, (status, process, detail)
        else:
            cut_at = float(process.removeprefix("t="))
            assert gateway_killed_at <= cut_at < gateway_killed_at + 1, detail
    assert len(outcome.failed) <= CLIENTS
    # Served throughout, the Redis failover included.
    assert after - before_kill > 100
    assert time.monotonic() - killed_at < 30

    # The killed process's calls that were at the provider (on its journal) are recorded as
    # interrupted by a live process's sweep (GATEWAY_JOURNAL_SWEEP_SECONDS, 2 s here); a call
    # killed before it was journalled never reached a provider and needs no record.
    time.sleep(5)
    with django_db_blocker.unblock():
        interrupted = AuditRecord.objects.filter(
            tenant_id=drill_tenants.load_tenant_id, status=AuditStatus.INTERRUPTED
        ).count()
    print(f"{interrupted} calls of {victim} recorded as interrupted from its journal")
    assert interrupted <= len(outcome.failed)
    journal = Path(os.environ["GATEWAY_JOURNAL_DIR"])
    left = list(journal.glob(f"{deployment.gateways[victim]['pid']}-*.jsonl"))
    assert not left, f"the killed process's journal was not recovered: {left}"

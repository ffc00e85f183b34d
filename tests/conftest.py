from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.support.live import LiveGateway, start_gateway
from tests.support.redis_cluster import RedisClusterNodes, cluster_nodes
from tests.support.world import World, build_world

# Property tests judge the code, not the machine: a loaded CI host must not fail them for being
# slow to generate inputs or to run one example.
hypothesis_settings.register_profile(
    "gateway", suppress_health_check=[HealthCheck.too_slow], deadline=None
)
hypothesis_settings.load_profile("gateway")

# The test process talks to the database from several threads (the in-process proxy's writer
# among them); plain connections close with their thread, a pool would keep the test database
# busy at teardown. The live gateway subprocess keeps its pool.
settings.DATABASES["default"].get("OPTIONS", {}).pop("pool", None)
# Each run journals its provider calls in a folder of its own (live gateways inherit it), so a
# gateway killed by one run is recovered by that run, never against another run's database.
os.environ["GATEWAY_JOURNAL_DIR"] = tempfile.mkdtemp(prefix="gateway-journal-")
settings.GATEWAY_JOURNAL_DIR = Path(os.environ["GATEWAY_JOURNAL_DIR"])

# The mock providers listen on 127.0.0.1, which the egress policy refuses unless loopback is
# allowed: the suite allows it explicitly, as the demo does (GATEWAY_EGRESS_ALLOW_LOOPBACK; the
# live gateway gets it from tests/support/live.py). Tests of the policy itself turn it off.
settings.GATEWAY_EGRESS = dataclasses.replace(settings.GATEWAY_EGRESS, allow_loopback=True)
# The in-process runtime keeps its deployment health to itself: tests that cool a deployment
# down by hand must not cool it down for the live gateways (which share theirs through Redis).
settings.GATEWAY_SHARED_HEALTH_SECONDS = 0


# The Redis db a run holds (see _fresh_quota_counters): "<host>:<pid>" of the run.
REDIS_CLAIM = "gateway:test-run"


@pytest.fixture(scope="session", autouse=True)
def _fresh_quota_counters() -> Iterator[None]:
    """Counters are keyed by database ids, which every test database hands out again, so a run
    empties its Redis db first and needs it alone: two runs on one db would empty each other's
    counters and count each other's requests. A second run claiming a held db stops here, with
    the way out; each run needs its own REDIS_URL (its own db number)."""
    import redis
    from django.conf import settings as django_settings

    if not django_settings.REDIS_URL:
        yield
        return
    client = redis.Redis.from_url(django_settings.REDIS_URL, decode_responses=True)
    claim = f"{socket.gethostname()}:{os.getpid()}"
    if not client.set(REDIS_CLAIM, claim, nx=True):
        holder = str(client.get(REDIS_CLAIM) or "")
        host, _, pid = holder.rpartition(":")
        if host != socket.gethostname() or _alive(int(pid or 0)):
            client.close()
            pytest.exit(
                f"REDIS_URL {django_settings.REDIS_URL} is held by another test run ({holder}):"
                " give this run a Redis db of its own (REDIS_URL=redis://host:6379/<n>), or, if"
                f" that run is gone, `redis-cli -n <n> del {REDIS_CLAIM}`",
                returncode=4,
            )
        client.set(REDIS_CLAIM, claim)  # its holder died without releasing it
    batch = [key for key in client.scan_iter(count=1000) if key != REDIS_CLAIM]
    for start in range(0, len(batch), 1000):
        client.unlink(*batch[start : start + 1000])
    yield
    if client.get(REDIS_CLAIM) == claim:
        client.delete(REDIS_CLAIM)
    client.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """A real Redis Cluster (three masters, one replica each), started when first asked for."""
    yield from cluster_nodes()


@pytest.fixture
async def in_process_proxy() -> Any:
    """The proxy served by Django's AsyncClient in this process; its runtime closed after."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    from routing.runtime import close_runtime

    yield
    await close_runtime()
    # The key and route lookups ran on asgiref's shared thread: close its connection too.
    await sync_to_async(connections.close_all)()


@pytest.fixture(scope="session")
def mock_server() -> Iterator[Any]:
    from mock_provider.testing import run_mock_server

    with run_mock_server() as server:
        yield server


@pytest.fixture(scope="session")
def failing_mock() -> Iterator[Any]:
    """A provider that answers every request with 429 and Retry-After."""
    from mock_provider.config import MockConfig
    from mock_provider.testing import run_mock_server

    with run_mock_server(MockConfig(status=429, fail_rate=1.0, retry_after=1)) as server:
        yield server


@pytest.fixture(scope="session")
def slow_mock() -> Iterator[Any]:
    """A provider that takes 1.5 s before its answer or its first event."""
    from mock_provider.config import MockConfig
    from mock_provider.testing import run_mock_server

    with run_mock_server(MockConfig(latency_ms=1500)) as server:
        yield server


@pytest.fixture(scope="session")
def world(
    django_db_setup: None,
    django_db_blocker: Any,
    mock_server: Any,
    failing_mock: Any,
    slow_mock: Any,
) -> World:
    with django_db_blocker.unblock():
        return build_world(
            mock_url=mock_server.base_url,
            failing_mock_url=failing_mock.base_url,
            slow_mock_url=slow_mock.base_url,
        )


@pytest.fixture(scope="session")
def gateway(world: World) -> Iterator[LiveGateway]:
    live = start_gateway()
    yield live
    live.stop()


def wait_for_record(request_id: str, *, finished: bool = True, timeout: float = 5.0) -> Any:
    from audit.models import AuditRecord, AuditStatus

    deadline = time.monotonic() + timeout
    while True:
        record = AuditRecord.objects.filter(request_id=request_id).first()
        if record is not None and (not finished or record.status != AuditStatus.IN_PROGRESS):
            return record
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no {'finished ' if finished else ''}audit record for {request_id}"
            )
        time.sleep(0.02)

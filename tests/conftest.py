from __future__ import annotations

import dataclasses
import os
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


@pytest.fixture(scope="session", autouse=True)
def _fresh_quota_counters() -> None:
    """Counters are keyed by database ids, which a recreated test database hands out again."""
    import redis
    from django.conf import settings as django_settings

    if django_settings.REDIS_URL:
        redis.Redis.from_url(django_settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """A real Redis Cluster (three masters, one replica each), started when first asked for."""
    yield from cluster_nodes()


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

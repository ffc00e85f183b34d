"""`/readyz` turns a process away before it is overloaded: audit writer backlog, database pool
waiters, event-loop lag (audit/observability/backpressure.py), each with its reason."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from psycopg_pool import ConnectionPool

from audit.observability import backpressure
from routing.runtime import close_runtime, get_runtime

pytestmark = [pytest.mark.django_db]


@pytest.fixture
async def fresh_runtime() -> Any:
    await close_runtime()
    yield get_runtime()
    await close_runtime()
    await sync_to_async(connections.close_all)()


def _limits(settings: Any, **changes: Any) -> None:
    settings.GATEWAY_READINESS = dataclasses.replace(settings.GATEWAY_READINESS, **changes)


async def _backpressure() -> tuple[int, str]:
    response = await AsyncClient().get("/readyz")
    return response.status_code, response.json()["checks"]["backpressure"]


async def test_an_audit_backlog_past_its_limit_makes_the_process_unready(
    world: Any, fresh_runtime: Any, settings: Any, monkeypatch: Any
) -> None:
    _limits(settings, audit_backlog=100)
    assert await _backpressure() == (200, "ok")
    monkeypatch.setattr(fresh_runtime.audit, "backlog", lambda: 101)
    status, reason = await _backpressure()
    assert status == 503
    assert reason == "failed: audit writer backlog 101 records (limit 100)"


async def test_callers_waiting_for_a_database_connection_make_the_process_unready(
    world: Any, fresh_runtime: Any, settings: Any, monkeypatch: Any
) -> None:
    """A real pool of one connection, held, with a second caller waiting for it."""
    _limits(settings, pool_waiting=0)
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    pool = ConnectionPool(kwargs=params, min_size=1, max_size=1, open=True)

    class Wrapper:
        vendor = "postgresql"
        settings_dict = {"OPTIONS": {"pool": True}}

    Wrapper.pool = pool  # type: ignore[attr-defined]
    monkeypatch.setattr(backpressure, "connections", {"default": Wrapper()})
    held = pool.getconn()
    waiter = threading.Thread(target=lambda: pool.putconn(pool.getconn(timeout=10)))
    try:
        assert await _backpressure() == (200, "ok")
        waiter.start()
        while pool.get_stats().get("requests_waiting", 0) == 0:
            await asyncio.sleep(0.01)
        status, reason = await _backpressure()
        assert status == 503
        assert reason == "failed: database pool exhausted: 1 callers waiting (limit 0)"
    finally:
        pool.putconn(held)
        waiter.join(timeout=10)
        pool.close()


async def test_a_blocked_event_loop_makes_the_process_unready_until_it_catches_up(
    world: Any, fresh_runtime: Any, settings: Any
) -> None:
    _limits(settings, loop_lag_ms=300)
    assert await _backpressure() == (200, "ok")  # the first probe starts the monitor
    await asyncio.sleep(0.2)
    time.sleep(0.6)  # CPU-bound work on the loop: nothing else runs meanwhile
    await asyncio.sleep(0.15)
    status, reason = await _backpressure()
    assert status == 503
    assert reason.startswith("failed: event loop lag ")
    assert reason.endswith(" ms (limit 300 ms)")
    assert int(reason.split()[4]) >= 500
    await asyncio.sleep(backpressure.LAG_WINDOW_S + 0.2)
    assert await _backpressure() == (200, "ok")

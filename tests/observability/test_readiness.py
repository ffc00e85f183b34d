"""`/readyz`: ready only when the database, Redis, the audit writer and every route can serve."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient

from routing.core.errors import UpstreamError
from routing.runtime import close_runtime, get_runtime

pytestmark = [pytest.mark.django_db]


@pytest.fixture
async def fresh_runtime():
    await close_runtime()
    yield get_runtime()
    await close_runtime()
    await sync_to_async(connections.close_all)()


async def test_it_is_ready_then_not_when_every_deployment_of_a_route_cools_down(
    world, fresh_runtime
):
    client = AsyncClient()
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.content
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "audit_writer", "backpressure", "routes"}

    table = await fresh_runtime.routes.get()
    (target,) = table.resolve("always-limited").targets
    fresh_runtime.health.record_failure(
        target, UpstreamError("limited", status=429, cause="rate_limited", retry_after=30)
    )
    not_ready = await client.get("/readyz")

    assert not_ready.status_code == 503
    assert "always-limited: every deployment cooling down" in not_ready.json()["checks"]["routes"]
    assert (await client.get("/healthz")).status_code == 200  # alive all the same


async def test_a_stopped_audit_writer_makes_the_worker_unready(world, fresh_runtime):
    fresh_runtime.audit.close()
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["audit_writer"].startswith("failed")

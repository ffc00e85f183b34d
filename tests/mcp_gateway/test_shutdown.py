"""A worker that served the MCP endpoint stops as promptly as one that did not: the SDK's
session manager ends with the ASGI lifespan rather than holding the shutdown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tenants import services as tenants
from tests.support.live import start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@pytest.fixture(scope="module")
def key(world: Any, django_db_blocker: Any) -> str:
    """Committed before the gateway starts (a test's own transaction would hide it)."""
    with django_db_blocker.unblock():
        tenant = tenants.tenant_apply(slug="mcp-stop", name="Stop")
        team = tenants.team_apply(tenant=tenant, slug="ops", name="Ops", allowed_models=[])
        return tenants.key_create(team=team, name="stop-key")[1].plaintext


def test_a_worker_that_served_mcp_stops_promptly(key: str) -> None:
    live = start_gateway()
    try:

        async def listed() -> list[Any]:
            headers = {"authorization": f"Bearer {key}"}
            http = httpx2.AsyncClient(headers=headers, timeout=30)
            async with Client(streamable_http_client(live.url + "/mcp", http_client=http)) as c:
                return (await c.list_tools()).tools

        assert asyncio.run(listed()) == []  # no grant: nothing
    finally:
        began = time.monotonic()
        live.stop()
        stopped_in = time.monotonic() - began
    # Ended by SIGTERM within the grace, not killed after LiveGateway.stop's 10 s.
    assert live.process.returncode in (0, -15)
    assert stopped_in < 5, stopped_in

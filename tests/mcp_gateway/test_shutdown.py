"""A worker that served the MCP endpoint stops as promptly as one that did not: the SDK's
session manager ends with the ASGI lifespan rather than holding the shutdown; and a tool call
the shutdown cuts is recorded as interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from audit.journal import recover_orphans
from audit.models import AuditRecord, AuditStatus
from mock_provider.testing import McpMockServer, run_mcp_mock_server
from routing.mcp_gateway import services as mcp
from tenants import services as tenants
from tests.support.live import start_gateway
from tests.support.world import TenantWorld, build_tenant

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


@pytest.fixture(scope="module")
def cut(world: Any, django_db_blocker: Any) -> Iterator[tuple[McpMockServer, TenantWorld]]:
    """A server with a slow tool and a team granted it, committed before the gateway starts."""
    with run_mcp_mock_server(token="tok-for-the-cut") as upstream, django_db_blocker.unblock():
        found = build_tenant("mcp-cut", name="Cut", teams=["ops"], keys=["cut-key"])
        server = mcp.mcp_server_upsert(
            tenant=found.tenant, name="tools", url=upstream.url, credential="tok-for-the-cut"
        )
        mcp.mcp_grant_set(server=server, team=found.team, tools=["slow"])
        yield upstream, found


def _agent_calling_slow(url: str, key: str, *, seconds: int) -> threading.Thread:
    """An agent on a thread of its own calling the slow tool; the drill cuts it (whatever it
    then raises is the drill, not a failure)."""

    async def call() -> None:
        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30)
        endpoint = streamable_http_client(url + "/mcp", http_client=http)
        with contextlib.suppress(Exception):
            async with Client(endpoint) as client:
                await client.call_tool("tools__slow", {"seconds": seconds})

    agent = threading.Thread(target=asyncio.run, args=(call(),), daemon=True)
    agent.start()
    return agent


def test_a_tool_call_cut_by_the_shutdown_is_recorded_interrupted(
    cut: tuple[McpMockServer, TenantWorld],
) -> None:
    """With a grace shorter than the tool's answer, the call is cut; its record, committed as
    in progress before the call went upstream, is completed as interrupted, not left behind."""
    upstream, found = cut
    live = start_gateway(GATEWAY_SHUTDOWN_GRACE_SECONDS="1")

    agent = _agent_calling_slow(live.url, found.key("cut-key"), seconds=20)
    try:
        deadline = time.monotonic() + 30
        while not any(name == "slow" for name, _ in upstream.state.calls):
            assert time.monotonic() < deadline, "the call never reached the server"
            time.sleep(0.05)
        record = AuditRecord.objects.get(tenant=found.tenant, model_requested="tools__slow")
        assert record.status == AuditStatus.IN_PROGRESS  # committed before it went up
        live.process.send_signal(signal.SIGTERM)
        live.process.wait(timeout=30)
    finally:
        live.stop()
    agent.join(timeout=30)
    record.refresh_from_db()
    assert (record.status, record.error_type) == (AuditStatus.INTERRUPTED, "interrupted")
    assert record.completed_at is not None and record.latency_ms is not None
    assert (record.request_body or {}).get("arguments") == {"seconds": 20}


def test_a_tool_call_left_by_a_killed_worker_is_recovered_as_interrupted(
    cut: tuple[McpMockServer, TenantWorld], tmp_path: Path
) -> None:
    """SIGKILL: no shutdown runs. The call was on the worker's write-ahead journal before it went
    upstream, so the next start's recovery completes its record instead of leaving it in
    progress for ever."""
    upstream, found = cut
    live = start_gateway(GATEWAY_JOURNAL_DIR=str(tmp_path))
    slow_before = sum(1 for name, _ in upstream.state.calls if name == "slow")
    records_before = set(
        AuditRecord.objects.filter(tenant=found.tenant).values_list("request_id", flat=True)
    )

    agent = _agent_calling_slow(live.url, found.key("cut-key"), seconds=15)
    try:
        deadline = time.monotonic() + 30
        while sum(1 for name, _ in upstream.state.calls if name == "slow") == slow_before:
            assert time.monotonic() < deadline, "the call never reached the server"
            time.sleep(0.05)
        live.process.send_signal(signal.SIGKILL)
        live.process.wait(timeout=30)
    finally:
        live.stop()
    (record,) = AuditRecord.objects.filter(tenant=found.tenant).exclude(
        request_id__in=records_before
    )
    assert record.status == AuditStatus.IN_PROGRESS  # nothing completed it: the worker is gone

    with ThreadPoolExecutor(1) as pool:  # what the next gateway on this machine does first
        pool.submit(recover_orphans, tmp_path).result()

    record.refresh_from_db()
    assert (record.status, record.error_type) == (AuditStatus.INTERRUPTED, "interrupted")
    assert (record.request_body or {}).get("arguments") == {"seconds": 15}
    assert not list(tmp_path.glob("*.jsonl"))  # the segment is done with
    agent.join(timeout=30)

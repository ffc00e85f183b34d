"""Drill: 5% of upstream calls fail (429, 500, 503, connection reset, stall); clients never notice.

A route has two deployments on two mock provider processes: the primary meets a mixed fault on
one request in 20 (one in 100 each of 429, 500, 503, a TCP reset and a 30 s stall), the
secondary is healthy. The route's per-attempt timeout (2 s) turns a stall into a failover.
10,000 requests, a fifth of them streamed, at high concurrency through a live gateway:

- no client sees an error, a broken or an incomplete stream;
- every request's upstream calls stay within 1 + retries + fallbacks (the gateway does not retry
  a deployment: 0 retries, 1 fallback), counted both at the mocks and in the audit records'
  `attempts`, and the two counts agree call for call; each fault is recorded under its own cause.

A fault after the first byte of a stream cannot be failed over (the client has the first event):
the second test proves such a stream ends with an error event the SDKs raise, and is recorded as
`failed` with the cause, while the same fault on a whole (non-streamed) answer still fails over.
Run alone: `pytest tests/drills/test_upstream_faults.py` (about a minute; `-s` prints timings).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import uvloop

from audit.models import AuditRecord, AuditStatus
from bench.procs import Server, free_port
from routing import services as routing
from tests.conftest import wait_for_record
from tests.support.live import LiveGateway, start_gateway, wait_for_config
from tests.support.world import build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ROUTE = "resilient-chat"
# The same two providers under other deployments: its own health, whatever the first test left.
LATE_ROUTE = "resilient-chat-late"
SLUG = "faulty-upstream"
REQUESTS = 10_000
CONCURRENCY = 96
STREAM_EVERY = 5  # a fifth of the requests stream
FAULT_RATE = 0.05
ATTEMPT_TIMEOUT_S = 2.0  # the route's per-attempt deadline: a stall is abandoned after it
# The gateway's upstream read timeout: the longest silence it waits for inside a stream.
UPSTREAM_TIMEOUT_S = 3.0
RETRIES, FALLBACKS = 0, 1
MAX_CALLS = 1 + RETRIES + FALLBACKS
# What the gateway must record for each kind of fault the primary produced.
CAUSE_OF_FAULT = {
    "429": "rate_limited",
    "500": "server_error",
    "503": "overloaded",
    "reset": "connection",
    "stall": "timeout",
}


@dataclass
class Mocks:
    primary: str
    secondary: str

    def stats(self, url: str) -> dict[str, Any]:
        return dict(httpx.get(url + "/_mock/stats", timeout=5).json())

    def clear_stats(self) -> None:
        for url in (self.primary, self.secondary):
            httpx.delete(url + "/_mock/stats", timeout=5).raise_for_status()

    def configure(self, url: str, **overrides: Any) -> None:
        httpx.post(url + "/_mock/config", json=overrides, timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def mocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mocks]:
    """Two mock provider processes, so the load generator does not share their interpreter."""
    logs = tmp_path_factory.mktemp("fault-mocks")
    servers = []
    try:
        for name, extra in (
            ("primary", ["--fault-rate", str(FAULT_RATE), "--stall-ms", "30000"]),
            ("secondary", []),
        ):
            port = free_port()
            argv = [sys.executable, "-m", "mock_provider", "--port", str(port), *extra]
            server = Server(name, argv, port, logs / f"{name}.log", {"PATH": "/usr/bin:/bin"})
            servers.append(server)
            server.wait_ready("/health")
        yield Mocks(*(f"http://127.0.0.1:{server.port}" for server in servers))
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def fault_key(django_db_setup: None, django_db_blocker: Any, mocks: Mocks) -> str:
    with django_db_blocker.unblock():
        providers = [
            routing.provider_upsert(
                name=f"faulty-{name}",
                kind="openai",
                base_url=url + "/v1",
                credential=f"sk-{name}",
                region="",
            )
            for name, url in (("primary", mocks.primary), ("secondary", mocks.secondary))
        ]
        for alias, prefix in ((ROUTE, "faulty-gpt"), (LATE_ROUTE, "late-gpt")):
            deployments = [
                routing.deployment_upsert(
                    name=f"{prefix}-{role}",
                    provider=provider,
                    upstream_model="mock-gpt",
                    input_price_per_mtok=Decimal(1),
                    output_price_per_mtok=Decimal(1),
                )
                for role, provider in zip(("primary", "secondary"), providers, strict=True)
            ]
            routing.route_upsert(
                alias=alias,
                description="two deployments, per-attempt deadline",
                deployments=deployments,
                timeout_seconds=ATTEMPT_TIMEOUT_S,
                first_token_timeout_seconds=ATTEMPT_TIMEOUT_S,
            )
        built = build_tenant(SLUG, name="Faulty Upstream", teams=["desk"], keys=["drill"])
        material = built.keys["drill"]
    return material.plaintext


@pytest.fixture(scope="module")
def fault_gateway(
    fault_key: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveGateway, Path]]:
    log = tmp_path_factory.mktemp("fault-gateway") / "gateway.log"
    with log.open("wb") as output:
        gateway = start_gateway(
            output=output, GATEWAY_UPSTREAM_TIMEOUT_SECONDS=str(UPSTREAM_TIMEOUT_S)
        )
        try:
            wait_for_config(gateway, fault_key, ROUTE)
            wait_for_config(gateway, fault_key, LATE_ROUTE)
            yield gateway, log
        finally:
            gateway.stop()


@dataclass
class Seen:
    """What one client saw: the request id, and what was wrong with the answer (empty: nothing)."""

    request_id: str
    problem: str = ""


def _body(i: int, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": ROUTE,
        "messages": [{"role": "user", "content": f"Drill request {i}"}],
    }
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


async def _one(session: aiohttp.ClientSession, url: str, headers: dict[str, str], i: int) -> Seen:
    stream = i % STREAM_EVERY == 0
    expected = f"Mock reply to: Drill request {i}"
    try:
        async with session.post(url, data=_body(i, stream), headers=headers) as response:
            seen = Seen(response.headers.get("x-request-id", ""))
            if response.status != 200:
                seen.problem = f"HTTP {response.status}: {(await response.text())[:200]}"
                return seen
            if not stream:
                content = (await response.json())["choices"][0]["message"]["content"]
                if content != expected:
                    seen.problem = f"answer {content!r}"
                return seen
            text, done = "", False
            async for line in response.content:
                data = line.strip().removeprefix(b"data: ")
                if not line.startswith(b"data: "):
                    continue
                if data == b"[DONE]":
                    done = True
                    continue
                event = json.loads(data)
                if "error" in event:
                    seen.problem = f"error event {event['error']}"
                    return seen
                for choice in event.get("choices") or []:
                    text += (choice.get("delta") or {}).get("content") or ""
            if not done or text != expected:
                seen.problem = f"stream ended done={done} text={text!r}"
            return seen
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Seen("", f"{type(exc).__name__}: {exc}")


async def _load(gateway: LiveGateway, key: str, count: int, concurrency: int) -> list[Seen]:
    url = gateway.api_url + "/chat/completions"
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    results: list[Seen] = []
    pending = iter(range(count))
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for i in pending:
                results.append(await _one(session, url, headers, i))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def _records(since_id: int, expected: int, timeout: float = 30.0) -> list[AuditRecord]:
    """The drill tenant's records after `since_id`, once every stream's record is completed."""
    deadline = time.monotonic() + timeout
    while True:
        records = list(
            AuditRecord.objects.filter(id__gt=since_id, tenant__slug=SLUG)
            .exclude(endpoint__endswith="dry_run")
            .only("request_id", "status", "error_type", "attempts", "deployment_name")
        )
        settled = not any(r.status == AuditStatus.IN_PROGRESS for r in records)
        if (len(records) >= expected and settled) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _calls(record: AuditRecord) -> list[dict[str, Any]]:
    """The upstream calls of a record: its attempts minus the deployments passed over."""
    return [a for a in record.attempts if a["error"] != "cooling_down"]


def _last_id() -> int:
    last = AuditRecord.objects.order_by("-id").values_list("id", flat=True).first()
    return int(last or 0)


def _log_errors(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if " ERROR " in line or "Traceback" in line][:10]


@pytest.mark.timeout(300)
def test_10000_requests_through_5_percent_upstream_faults_show_no_client_an_error(
    mocks: Mocks,
    fault_key: str,
    fault_gateway: tuple[LiveGateway, Path],
    django_db_blocker: Any,
) -> None:
    gateway, log = fault_gateway
    with django_db_blocker.unblock():
        since = _last_id()
    mocks.clear_stats()

    started = time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        seen = runner.run(_load(gateway, fault_key, REQUESTS, CONCURRENCY))
    load_s = time.perf_counter() - started

    problems = Counter(s.problem for s in seen if s.problem)
    assert not problems, problems.most_common(5)
    assert len(seen) == REQUESTS

    primary, secondary = mocks.stats(mocks.primary), mocks.stats(mocks.secondary)
    faults = primary["by_fault"]
    # The primary really failed one call in 20, every kind in turn (the stall included).
    assert sum(faults.values()) == int(primary["total"] * FAULT_RATE + 1e-9)
    assert set(faults) == set(CAUSE_OF_FAULT) and max(faults.values()) - min(faults.values()) <= 1
    # One failure in 20 does not open the breaker: the primary was asked every time, and the
    # secondary only for the primary's faults (no request passed the primary over).
    assert primary["total"] == REQUESTS
    assert secondary["total"] == sum(faults.values())

    with django_db_blocker.unblock():
        records = _records(since, REQUESTS)
    assert len(records) == REQUESTS
    assert {s.request_id for s in seen} == {r.request_id for r in records}
    assert Counter(r.status for r in records) == {AuditStatus.SUCCESS: REQUESTS}

    calls = {r.request_id: _calls(r) for r in records}
    assert max(len(c) for c in calls.values()) <= MAX_CALLS
    # The mocks saw exactly the calls the records list: none hidden, none invented.
    assert sum(len(c) for c in calls.values()) == primary["total"] + secondary["total"]
    for attempts in calls.values():
        assert attempts[-1]["status"] == 200
        assert all(a["status"] != 200 for a in attempts[:-1])
    # Each fault is on the record under its own cause, as many times as the primary produced it.
    failed = Counter(a["error"] for c in calls.values() for a in c[:-1])
    assert failed == {CAUSE_OF_FAULT[kind]: n for kind, n in faults.items()}
    assert _log_errors(log) == []

    print(
        f"\n{REQUESTS} requests at concurrency {CONCURRENCY} in {load_s:.1f} s "
        f"({REQUESTS / load_s:.0f} req/s); primary {primary['total']} calls, faults {faults}; "
        f"secondary {secondary['total']} calls"
    )


def _stream_events(gateway: LiveGateway, key: str, text: str) -> tuple[httpx.Response, list[Any]]:
    body = {"model": LATE_ROUTE, "stream": True, "messages": [{"role": "user", "content": text}]}
    events: list[Any] = []
    headers = {"authorization": f"Bearer {key}"}
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", gateway.api_url + "/chat/completions", json=body, headers=headers
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
    return response, events


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("fault", "cause"),
    [("reset_after_start", "stream_broken"), ("stall_after_start", "stream_stalled")],
)
def test_a_fault_after_the_first_event_of_a_stream_is_reported_in_the_stream_and_recorded(
    mocks: Mocks,
    fault_key: str,
    fault_gateway: tuple[LiveGateway, Path],
    django_db_blocker: Any,
    fault: str,
    cause: str,
) -> None:
    gateway, _ = fault_gateway
    mocks.configure(mocks.primary, fault_rate=1.0, faults=[fault], stall_ms=30_000)
    try:
        for i in range(3):
            started = time.perf_counter()
            response, events = _stream_events(gateway, fault_key, f"mid-stream {fault} {i}")
            elapsed = time.perf_counter() - started

            # The client got the first event from the primary, then an error it cannot miss:
            # an error event (which the SDKs raise), never a [DONE], and not 30 s of silence.
            assert response.status_code == 200
            assert response.headers["x-gateway-deployment"] == "late-gpt-primary"
            assert events[0]["choices"][0]["delta"]["role"] == "assistant"
            assert "[DONE]" not in events
            error = events[-1]["error"]
            assert error["code"] == cause and error["type"] == "upstream_error"
            assert response.headers["x-request-id"] in error["message"]
            assert elapsed < UPSTREAM_TIMEOUT_S + 5

            with django_db_blocker.unblock():
                record = wait_for_record(response.headers["x-request-id"])
            assert (record.status, record.error_type) == (AuditStatus.FAILED, cause)
            # One call: the stream had started, so no other deployment was asked.
            assert [(a["deployment"], a["status"]) for a in _calls(record)] == [
                ("late-gpt-primary", 200)
            ]

        # The same fault on a whole answer happens before any byte reaches the client: it fails
        # over to the secondary.
        answer = httpx.post(
            gateway.api_url + "/chat/completions",
            json={"model": LATE_ROUTE, "messages": [{"role": "user", "content": f"whole {fault}"}]},
            headers={"authorization": f"Bearer {fault_key}"},
            timeout=30,
        )
        assert answer.status_code == 200
        assert answer.headers["x-gateway-deployment"] == "late-gpt-secondary"
        with django_db_blocker.unblock():
            record = wait_for_record(answer.headers["x-request-id"])
        expected = "connection" if fault == "reset_after_start" else "timeout"
        assert [(a["deployment"], a["error"]) for a in _calls(record)] == [
            ("late-gpt-primary", expected),
            ("late-gpt-secondary", ""),
        ]
    finally:
        mocks.configure(mocks.primary)  # back to the start-up config

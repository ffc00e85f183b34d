"""Clients that hold sockets or memory: idle, half-sent heads and bodies, a crowd of connections,
and large bodies. Against the real server (uvicorn via gateway_site.server), since these limits
live at the socket, below Django."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.live import LiveGateway, start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

TIMEOUT_S = 2.0  # head, body and keep-alive deadlines of the gateway under test
SLACK_S = 1.5  # the event loop's timer, a loaded test machine
CAP = 40


@pytest.fixture(scope="module")
def strict_gateway(world: Any) -> Iterator[LiveGateway]:
    live = start_gateway(
        GATEWAY_HEADER_TIMEOUT_SECONDS=TIMEOUT_S,
        GATEWAY_BODY_TIMEOUT_SECONDS=TIMEOUT_S,
        GATEWAY_KEEP_ALIVE_SECONDS=int(TIMEOUT_S),
        GATEWAY_MAX_CONNECTIONS=CAP,
    )
    yield live
    live.stop()


def _connect(gateway: LiveGateway, first_bytes: bytes = b"") -> socket.socket:
    port = int(gateway.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def _read_until_closed(sock: socket.socket, *, within: float) -> tuple[bool, bytes]:
    """(closed by the gateway before `within` seconds from now, what it sent)."""
    deadline = time.monotonic() + within
    answer = b""
    with sock:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return False, answer
            except ConnectionResetError:
                return True, answer
            if not chunk:
                return True, answer
            answer += chunk
    return False, answer


def _chat(
    gateway: LiveGateway, key: str, content: str, timeout: float = 30, **kwargs: Any
) -> httpx.Response:
    return httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "demo", "messages": [{"role": "user", "content": content}], **kwargs},
        timeout=timeout,
    )


def test_it_closes_idle_and_half_sent_requests_while_serving_others(
    strict_gateway: LiveGateway, world: Any
) -> None:
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {world.key}\r\nContent-Type: application/json\r\n"
    )
    started = time.monotonic()
    idle = _connect(strict_gateway)
    half_head = _connect(strict_gateway, head.encode())
    half_body = _connect(strict_gateway, (head + "Content-Length: 1000\r\n\r\n").encode() + b"{")

    served = _chat(strict_gateway, world.key, "hello while three sockets dawdle")
    assert served.status_code == 200

    within = TIMEOUT_S + SLACK_S - (time.monotonic() - started)
    for name, sock in (("idle", idle), ("half head", half_head), ("half body", half_body)):
        closed, answer = _read_until_closed(sock, within=within)
        assert closed, f"the {name} connection was still open after {TIMEOUT_S + SLACK_S} s"
        if name == "half body":
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line.startswith(b"HTTP/1.1 408")
            body = orjson.loads(rest.partition(b"\r\n\r\n")[2])
            assert body["error"]["code"] == "request_timeout"


def test_it_closes_a_kept_alive_connection_that_goes_idle(strict_gateway: LiveGateway) -> None:
    sock = _connect(strict_gateway, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    closed, answer = _read_until_closed(sock, within=TIMEOUT_S + SLACK_S)
    assert answer.startswith(b"HTTP/1.1 200")
    assert closed


def test_a_slow_answer_outlasting_the_read_timeouts_is_delivered_whole(
    strict_gateway: LiveGateway, world: Any
) -> None:
    started = time.monotonic()
    slow = _chat(strict_gateway, world.key, "[mock latency_ms=3000] take your time")
    assert slow.status_code == 200
    assert slow.json()["choices"][0]["message"]["content"]
    assert time.monotonic() - started > TIMEOUT_S

    started = time.monotonic()
    events = []
    with httpx.stream(
        "POST",
        strict_gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {world.key}"},
        json={
            "model": "demo",
            "stream": True,
            "messages": [{"role": "user", "content": "[mock chunk_delay_ms=300] a slow story"}],
        },
        timeout=30,
    ) as stream:
        events = [line for line in stream.iter_lines() if line.startswith("data:")]
    assert events[-1] == "data: [DONE]"
    assert time.monotonic() - started > TIMEOUT_S


def test_a_crowd_of_idle_connections_is_refused_then_reaped(strict_gateway: LiveGateway) -> None:
    crowd = [_connect(strict_gateway) for _ in range(CAP)]
    try:
        refused = httpx.get(strict_gateway.url + "/healthz", timeout=5)
        assert refused.status_code == 503
        time.sleep(TIMEOUT_S + SLACK_S)  # the idle crowd's head deadline passes
        assert httpx.get(strict_gateway.url + "/healthz", timeout=5).status_code == 200
    finally:
        for sock in crowd:
            sock.close()


# --- memory after large bodies -------------------------------------------------------------

BODY_BYTES = 7_000_000  # under the default 8 MiB limit: accepted
CONCURRENT = 16


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _resident_maps(pid: int) -> str:
    """Where the resident memory is, for a failure's message: the heap, and the largest
    anonymous maps (a block of one request body's size there is a body still held)."""
    sizes: dict[str, list[int]] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            name = head[5] if len(head) > 5 else "anonymous"
        elif head[0] == "Rss:" and name in ("[heap]", "anonymous"):
            sizes.setdefault(name, []).append(int(head[1]) // 1024)
    largest = sorted(sizes.get("anonymous", []), reverse=True)[:8]
    return (
        f"heap {sum(sizes.get('[heap]', [])):.0f} MB, anonymous "
        f"{sum(sizes.get('anonymous', [])):.0f} MB, largest anonymous maps (MB) {largest}"
    )


# Measured on the reference machine: a burst once left +370 MB for good (and each further burst
# added more); with the trim, +90 to +150 MB. Since the audit writer and the journal let their
# last batch go, a worker on its own is back to its idle size within 1.5 s; after the rest of the
# suite it has settled at +114 to +129 MB, in maps none of which is a body's size (allocator
# fragmentation, it seems; the failure message says where the memory is). The margin stays.
SETTLED_GROWTH_MB = 150


@pytest.mark.timeout(120)  # about 20 s: one burst, on a gateway of its own for a clean baseline
def test_a_burst_of_large_bodies_does_not_leave_the_worker_bloated(world: Any) -> None:
    gateway = start_gateway()
    try:
        pid = gateway.process.pid  # one worker: uvicorn serves in this very process
        for _ in range(3):  # caches, pools and the audit writer warm
            assert _chat(gateway, world.key, "warm up").status_code == 200
        idle = _rss_mb(pid)
        content = "word " * (BODY_BYTES // 5)
        with ThreadPoolExecutor(CONCURRENT) as pool:
            answers = list(
                # One worker takes them in turn (each read, counted, journaled, recorded and
                # echoed back whole): what is measured is memory, so no client gives up first.
                pool.map(
                    lambda _: _chat(gateway, world.key, content, timeout=100), range(CONCURRENT)
                )
            )
        assert [a.status_code for a in answers] == [200] * CONCURRENT
        deadline = time.monotonic() + 10  # the worker trims 0.5 s and 5.5 s after the burst
        while (settled := _rss_mb(pid)) > idle + SETTLED_GROWTH_MB:
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert settled < idle + SETTLED_GROWTH_MB, (
            f"idle {idle:.0f} MB, settled {settled:.0f} MB; {_resident_maps(pid)}"
        )
    finally:
        gateway.stop()

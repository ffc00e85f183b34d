"""Mixed faults: a fraction of requests meets 429, 5xx, a TCP reset or a stall, in turn."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from mock_provider.__main__ import parse_args
from mock_provider.testing import MockServer

USER: Any = [{"role": "user", "content": "hello there"}]
CHAT = {"model": "mock-gpt", "messages": USER}


def _raw(provider: MockServer, body: dict[str, Any], fault: str = "") -> tuple[bytes, str, float]:
    """One request on a fresh socket: the bytes received, how it ended ("FIN" or "RST"), seconds."""
    port = int(provider.base_url.rsplit(":", 1)[1])
    data = json.dumps(body).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(data)}\r\n"
        + (f"x-mock-fault: {fault}\r\n" if fault else "")
        + "\r\n"
    )
    started = time.perf_counter()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + data)
        try:
            while chunk := sock.recv(65536):
                received += chunk
            end = "FIN"
        except ConnectionResetError:
            end = "RST"
    return received, end, time.perf_counter() - started


def _outcome(provider: MockServer, body: dict[str, Any]) -> str:
    received, end, _ = _raw(provider, body)
    if end == "RST":
        return "reset"
    return received.split(b" ", 2)[1].decode()  # the status code


def test_5_percent_gives_one_request_in_20_a_fault_each_default_kind_in_turn(
    provider: MockServer, http: httpx.Client
) -> None:
    assert http.post("/_mock/config", json={"fault_rate": 0.05, "stall_ms": 50}).status_code == 200

    outcomes = [_outcome(provider, CHAT) for _ in range(100)]

    faulty = {i: outcome for i, outcome in enumerate(outcomes) if outcome != "200"}
    # The stall answers 200, late: the other four kinds are visible in the status.
    assert faulty == {19: "429", 39: "500", 59: "503", 79: "reset"}
    stats = http.get("/_mock/stats").json()
    assert stats["total"] == 100
    assert stats["by_fault"] == {"429": 1, "500": 1, "503": 1, "reset": 1, "stall": 1}
    logged = [entry.get("fault") for entry in provider.requests()]
    assert [(i, kind) for i, kind in enumerate(logged) if kind] == [
        (19, "429"),
        (39, "500"),
        (59, "503"),
        (79, "reset"),
        (99, "stall"),
    ]


def test_a_reset_is_a_tcp_reset_before_any_byte(provider: MockServer) -> None:
    for body in (CHAT, {**CHAT, "stream": True}):
        received, end, _ = _raw(provider, body, fault="reset")
        assert (received, end) == (b"", "RST")
    assert [entry["status"] for entry in provider.requests()] == [None, None]


def test_a_stall_holds_the_whole_answer_back_then_gives_it(provider: MockServer) -> None:
    provider.configure(stall_ms=300)
    received, end, seconds = _raw(provider, CHAT, fault="stall")
    assert end == "FIN" and seconds >= 0.28
    assert received.startswith(b"HTTP/1.1 200") and b"Mock reply to: hello there" in received


def test_a_reset_after_the_start_of_a_stream_comes_after_its_first_event(
    provider: MockServer,
) -> None:
    received, end, _ = _raw(provider, {**CHAT, "stream": True}, fault="reset_after_start")
    assert end == "RST"
    assert received.startswith(b"HTTP/1.1 200")
    assert received.count(b"data: ") == 1 and b"[DONE]" not in received


def test_a_reset_after_the_headers_of_a_whole_answer_leaves_its_body_unsent(
    provider: MockServer,
) -> None:
    received, end, _ = _raw(provider, CHAT, fault="reset_after_start")
    head, _, body = received.partition(b"\r\n\r\n")
    assert end == "RST" and head.startswith(b"HTTP/1.1 200") and b"content-length" in head
    assert body == b""


def test_a_stall_after_the_first_event_pauses_the_stream_then_finishes_it(
    provider: MockServer, http: httpx.Client
) -> None:
    provider.configure(stall_ms=300)
    body = {**CHAT, "stream": True}
    arrivals: list[float] = []
    started = time.perf_counter()
    with http.stream(
        "POST", "/v1/chat/completions", json=body, headers={"x-mock-fault": "stall_after_start"}
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.perf_counter() - started)
                last = line
    assert last == "data: [DONE]"
    assert arrivals[1] - arrivals[0] >= 0.28  # timer granularity


def test_the_openai_sdk_sees_a_reset_as_a_connection_error(
    provider: MockServer, oai: openai.OpenAI
) -> None:
    provider.configure(fault_rate=1.0, faults=["reset"])
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="mock-gpt", messages=USER)


def test_status_faults_speak_the_anthropic_format_and_a_429_carries_retry_after(
    provider: MockServer, claude: anthropic.Anthropic
) -> None:
    provider.configure(fault_rate=1.0, faults=["529", "429"], retry_after=2)
    with pytest.raises(anthropic.OverloadedError):
        claude.messages.create(model="mock-claude", max_tokens=10, messages=USER)
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="mock-claude", max_tokens=10, messages=USER)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body["error"]["type"] == "rate_limit_error"


def test_a_directive_forces_one_fault_on_one_request(http: httpx.Client) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "[mock fault=503] hi"}]}
    assert http.post("/v1/chat/completions", json=body).status_code == 503
    assert http.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_an_unknown_fault_kind_is_refused_everywhere(http: httpx.Client) -> None:
    refused = http.post("/_mock/config", json={"fault_rate": 0.1, "faults": ["429", "meteor"]})
    assert refused.status_code == 400 and "meteor" in refused.json()["error"]["message"]
    assert http.post("/_mock/config", json={"fault_rate": 1.5}).status_code == 400
    assert http.get("/_mock/config").json()["effective"]["fault_rate"] == 0
    header = http.post("/v1/chat/completions", json=CHAT, headers={"x-mock-fault": "meteor"})
    assert header.status_code == 400


def test_the_cli_flags_set_the_mixed_faults() -> None:
    _, config = parse_args(["--fault-rate", "0.05", "--faults", "429,reset", "--stall-ms", "9"])
    assert (config.fault_rate, config.faults, config.stall_ms) == (0.05, ("429", "reset"), 9)
    _, default = parse_args([])
    assert default.fault_rate == 0 and default.faults == ("429", "500", "503", "reset", "stall")
    with pytest.raises(SystemExit):
        parse_args(["--faults", "429,meteor"])

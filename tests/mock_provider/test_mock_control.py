"""The control surface: request log, runtime config, stats, the test helper and the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from mock_provider.__main__ import parse_args
from mock_provider.config import MockConfig
from mock_provider.testing import MockServer, run_mock_server

ROOT = Path(__file__).resolve().parents[2]


def test_the_request_log_shows_what_the_provider_received(
    provider: MockServer, http: httpx.Client, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    oai.chat.completions.create(
        model="mock-gpt", temperature=0.5, messages=[{"role": "user", "content": "logged"}]
    )
    claude.messages.create(
        model="mock-claude",
        max_tokens=7,
        messages=[{"role": "user", "content": "also logged"}],
        extra_headers={"anthropic-beta": "tools-2024-04-04"},
    )
    log = http.get("/_mock/requests").json()
    assert [entry["path"] for entry in log] == ["/v1/chat/completions", "/v1/messages"]
    first, second = log
    assert first["method"] == "POST" and first["status"] == 200
    assert first["headers"]["authorization"] == "Bearer sk-test"
    assert first["headers"]["content-type"] == "application/json"
    assert first["body"] == {
        "messages": [{"role": "user", "content": "logged"}],
        "model": "mock-gpt",
        "temperature": 0.5,
    }
    # Depending on its version the anthropic SDK sends x-api-key or a Bearer token.
    assert "sk-ant" in (
        second["headers"].get("x-api-key"),
        second["headers"].get("authorization", "")[7:],
    )
    assert second["headers"]["anthropic-beta"] == "tools-2024-04-04"
    assert "anthropic-version" in second["headers"]
    assert second["body"]["max_tokens"] == 7
    assert provider.requests() == log
    assert http.delete("/_mock/requests").json() == {"cleared": 2}
    assert http.get("/_mock/requests").json() == []


def test_the_log_keeps_only_the_latest_requests() -> None:
    with run_mock_server(MockConfig(log_limit=3)) as server, httpx.Client() as client:
        for i in range(5):
            client.post(
                server.openai_base_url + "/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": f"n{i}"}]},
            )
        kept = [r["body"]["messages"][0]["content"] for r in server.requests()]
    assert kept == ["n2", "n3", "n4"]


def test_runtime_config_replaces_overrides_and_an_empty_object_resets(
    http: httpx.Client,
) -> None:
    set_ = http.post("/_mock/config", json={"status": 503, "latency_ms": 10}).json()
    assert set_["runtime"] == {"status": 503, "latency_ms": 10}
    assert set_["effective"]["status"] == 503
    assert http.post("/v1/embeddings", json={"model": "m", "input": "x"}).status_code == 503
    # Replacing, not merging: latency is back to the startup value.
    assert http.post("/_mock/config", json={"fail_marker": "X"}).json()["effective"] == {
        **set_["startup"],
        "fail_marker": "X",
    }
    assert http.post("/_mock/config", json={}).json()["runtime"] == {}
    assert http.post("/v1/embeddings", json={"model": "m", "input": "x"}).status_code == 200
    assert http.get("/_mock/config").json()["effective"]["status"] is None


@pytest.mark.parametrize(
    "bad",
    [{"no_such_field": 1}, {"status": "500"}, {"fail_rate": 2}, {"models": ["x"]}, [1]],
)
def test_a_bad_runtime_config_is_refused_and_changes_nothing(
    http: httpx.Client, bad: object
) -> None:
    response = http.post("/_mock/config", json=bad)
    assert response.status_code == 400 and response.json()["error"]["message"]
    assert http.get("/_mock/config").json()["runtime"] == {}


def test_stats_count_requests_per_path_and_status(provider: MockServer, http: httpx.Client) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    http.post("/v1/chat/completions", json=body)
    http.post("/v1/chat/completions", json=body, headers={"x-mock-status": "429"})
    http.get("/v1/models")
    http.get("/v1/nope")
    assert http.get("/_mock/stats").json() == {
        "total": 4,
        "by_path": {"/v1/chat/completions": 2, "/v1/models": 1, "/v1/nope": 1},
        "by_status": {"200": 2, "429": 1, "404": 1},
        "by_fault": {},
    }
    http.delete("/_mock/stats")
    assert http.get("/_mock/stats").json()["total"] == 0


def test_health_and_invalid_json(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    response = http.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_run_mock_server_uses_its_startup_config_and_stops_cleanly() -> None:
    with run_mock_server(MockConfig(status=429, retry_after=1)) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        response = httpx.post(
            server.openai_base_url + "/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )
        assert response.status_code == 429 and response.headers["retry-after"] == "1"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass


def test_the_cli_flags_build_the_config() -> None:
    args, config = parse_args(
        [
            *("--port", "9200", "--status", "429", "--fail-rate", "0.25", "--retry-after", "2"),
            *("--latency-ms", "5", "--ttft-ms", "7", "--chunk-delay-ms", "3"),
            *("--fail-marker", "M", "--break-after-chunks", "4", "--api-key", "k"),
        ]
    )
    assert args.port == 9200
    assert config == MockConfig(
        status=429,
        fail_rate=0.25,
        retry_after=2,
        latency_ms=5,
        ttft_ms=7,
        chunk_delay_ms=3,
        fail_marker="M",
        break_after_chunks=4,
        required_api_key="k",
    )


def test_python_dash_m_serves_the_mock() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "mock_provider", "--port", str(port), "--status", "503"]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the mock never came up"
                time.sleep(0.05)
        assert response.status_code == 200
        chat = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )
        assert chat.status_code == 503
    finally:
        process.terminate()
        process.wait(timeout=10)

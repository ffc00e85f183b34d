"""Running the real gateway (uvicorn, ASGI) in a subprocess against the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from django.conf import settings

START_TIMEOUT_S = 90

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("the live-server tests need PostgreSQL: run them with `make test`")
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class LiveGateway:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def api_url(self) -> str:
        return self.url + "/v1"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gateway(*, output: IO[bytes] | None = None, **env_overrides: Any) -> LiveGateway:
    """`output`: a file that gets the gateway's stdout and stderr (default: the test's own)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "GATEWAY_ROUTES_CACHE_SECONDS": "0.5",
        "GATEWAY_LOG_LEVEL": "WARNING",
        # The mock providers are on 127.0.0.1 (a test may pass "false" to see the refusal).
        "GATEWAY_EGRESS_ALLOW_LOOPBACK": "true",
        **{name: str(value) for name, value in env_overrides.items()},
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway_site.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    gateway = LiveGateway(url=f"http://127.0.0.1:{port}", process=process)
    # Generous: a host busy with other test runs can take many times the usual few seconds.
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited with {process.returncode} while starting")
        try:
            if httpx.get(gateway.url + "/healthz", timeout=1).status_code == 200:
                return gateway
        except httpx.TransportError:
            time.sleep(0.1)
    gateway.stop()
    raise RuntimeError(f"the gateway did not start within {START_TIMEOUT_S} s")


def wait_for_config(
    gateway: LiveGateway | str,
    key: str,
    model: str,
    timeout: float = 10.0,
    request_timeout: float = 5.0,
) -> None:
    """Wait until the gateway's cached routing table and quota rules include what a test just
    committed (each worker reloads them in the background; the first caller still sees the old).
    `gateway`: a live gateway, or the base URL of one started otherwise."""
    api_url = gateway + "/v1" if isinstance(gateway, str) else gateway.api_url
    headers = {"authorization": f"Bearer {key}"}
    deadline = time.monotonic() + timeout
    while True:
        listed = httpx.get(api_url + "/models", headers=headers, timeout=request_timeout)
        if listed.status_code == 200 and model in {m["id"] for m in listed.json()["data"]}:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not pick up model {model!r}")
        time.sleep(0.1)
    # A dry run reads the quota rules (triggering their reload) and counts nothing.
    dry = {**headers, "x-gateway-dry-run": "1"}
    body = {"model": model, "messages": [{"role": "user", "content": "config check"}]}
    for _ in range(2):
        httpx.post(api_url + "/chat/completions", headers=dry, json=body, timeout=request_timeout)
        time.sleep(0.6)

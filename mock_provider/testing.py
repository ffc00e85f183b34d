"""Run the mock provider in-process for tests: a real uvicorn server on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from mock_provider.app import MockApp, create_app
from mock_provider.config import MockConfig

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class MockServer:
    """A running mock. `base_url` has no `/v1`: Anthropic clients take it as is,
    OpenAI clients want `openai_base_url`."""

    base_url: str
    app: MockApp

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    # The helpers below touch the app directly. The server thread only ever reads
    # `app.config` as one attribute, so swapping it from the test thread is safe.
    def configure(self, **overrides: Any) -> MockConfig:
        """Same as `POST /_mock/config`: replace the runtime overrides."""
        return self.app.set_runtime(overrides)

    def requests(self) -> list[dict[str, Any]]:
        return list(self.app.requests)

    def reset(self) -> None:
        """Runtime overrides, request log, stats and fail_rate counter back to startup."""
        self.app.reset()


@contextmanager
def run_mock_server(config: MockConfig | None = None) -> Iterator[MockServer]:
    """Serve a fresh mock on 127.0.0.1:<free port> in a background thread."""
    app = create_app(config)
    # Binding the socket ourselves gives us the port before the server starts, race-free.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
            # None: leave the host process's logging (pytest's capture) alone.
            log_config=None,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=120,  # as real providers do; see __main__.py
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"mock-provider-{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("mock provider failed to start")
            time.sleep(0.005)
        socket.create_connection(("127.0.0.1", port), timeout=_START_TIMEOUT_S).close()
        yield MockServer(base_url=f"http://127.0.0.1:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT_S)
        sock.close()


@dataclass(frozen=True, slots=True)
class McpMockServer:
    """A running mock MCP server: `url` is its Streamable HTTP endpoint."""

    url: str
    state: Any  # mock_provider.mcp_server.McpMockState

    @property
    def token_url(self) -> str:
        """Its OAuth token endpoint (RFC 8693 token exchange)."""
        return self.url.removesuffix("/mcp") + "/token"


@contextmanager
def run_mcp_mock_server(
    token: str = "", *, stateful: bool = False, state: Any = None
) -> Iterator[McpMockServer]:
    """Serve a fresh mock MCP server on 127.0.0.1:<free port> in a background thread; `state`
    (a McpMockState) sets its token endpoint's client and end users."""
    from mock_provider.mcp_server import McpMockState, create_mcp_app

    app, state = create_mcp_app(state or McpMockState(token=token), stateful=stateful)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",  # the SDK's session manager runs in the lifespan
            access_log=False,
            log_level="warning",
            log_config=None,
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"mock-mcp-{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("mock MCP server failed to start")
            time.sleep(0.005)
        yield McpMockServer(url=f"http://127.0.0.1:{port}/mcp", state=state)
    finally:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT_S)
        sock.close()

"""A worker's start-up leaves what it loaded out of the garbage collector's sight, so that the
full collections request traffic triggers walk only what came after (docs/quotas.md)."""

from __future__ import annotations

import gc
from typing import Any

from gateway_site import asgi
from routing import runtime
from routing.mcp_gateway import selectors as mcp_selectors


async def test_start_up_freezes_the_heap_before_the_first_request(monkeypatch: Any) -> None:
    order: list[str] = []

    async def nothing() -> None:
        return None

    # The runtime itself is built as in production elsewhere; here only the order matters.
    monkeypatch.setattr(runtime, "get_runtime", lambda: order.append("runtime"))
    monkeypatch.setattr(runtime, "close_runtime", nothing)
    # No MCP server configured: the MCP SDK is not loaded (that path has its own test).
    monkeypatch.setattr(mcp_selectors, "mcp_servers_exist", lambda: False)
    monkeypatch.setattr(gc, "freeze", lambda: order.append("freeze"))
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        order.append(message["type"])

    await asgi.lifespan(receive, send)
    assert order[:3] == ["runtime", "freeze", "lifespan.startup.complete"]

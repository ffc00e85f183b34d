"""The hop to an upstream MCP server, against the mock: stateless (JSON) and stateful (SSE)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from mock_provider.testing import run_mcp_mock_server
from routing.mcp_gateway.table import Upstream
from routing.mcp_gateway.upstream import UpstreamClient, UpstreamFailure

TOKEN = "upstream-token"


def _upstream(url: str, *, token: str = TOKEN, limit: int = 256 * 1024) -> Upstream:
    return Upstream(
        id=1,
        tenant_id=1,
        name="crm",
        url=url,
        headers=(("authorization", f"Bearer {token}"),),
        timeout_seconds=10,
        max_result_bytes=limit,
        result_injection="block",
    )


async def _requests(upstream: Upstream, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    async with httpx.AsyncClient() as http:
        client = UpstreamClient(http)
        return [await client.request(upstream, method, params) for method, params in calls]


@pytest.mark.parametrize("stateful", [False, True])
def test_it_lists_and_calls_tools_on_stateless_and_stateful_servers(stateful: bool) -> None:
    with run_mcp_mock_server(token=TOKEN, stateful=stateful) as server:
        listed, called, again = asyncio.run(
            _requests(
                _upstream(server.url),
                ("tools/list", {}),
                ("tools/call", {"name": "echo", "arguments": {"text": "hi"}}),
                ("tools/call", {"name": "echo", "arguments": {"text": "again"}}),
            )
        )
        posts = len(server.state.authorizations)
    assert "echo" in {tool["name"] for tool in listed["tools"]}
    assert called["content"][0]["text"] == "hi" and again["content"][0]["text"] == "again"
    # A stateless server is greeted once, then each call is one POST; a stateful one is
    # greeted (initialize, initialized) and its session closed around every call.
    assert posts == (2 + 3 if not stateful else 3 * 4)


def test_a_refused_credential_is_named() -> None:
    with run_mcp_mock_server(token=TOKEN) as server, pytest.raises(UpstreamFailure) as failure:
        asyncio.run(_requests(_upstream(server.url, token="wrong"), ("tools/list", {})))
    assert failure.value.kind == "http_status" and failure.value.code == 401
    assert "credential was refused" in failure.value.message


def test_a_result_over_the_limit_is_not_read_past_it() -> None:
    with run_mcp_mock_server(token=TOKEN) as server, pytest.raises(UpstreamFailure) as failure:
        asyncio.run(
            _requests(
                _upstream(server.url, limit=8 * 1024),
                ("tools/call", {"name": "big_report", "arguments": {"kilobytes": 64}}),
            )
        )
    assert failure.value.kind == "too_large"


def test_an_unreachable_server_is_named() -> None:
    with run_mcp_mock_server(token=TOKEN) as server:
        url = server.url
    with pytest.raises(UpstreamFailure) as failure:
        asyncio.run(_requests(_upstream(url), ("tools/list", {})))
    assert failure.value.kind == "unreachable"


def test_a_server_that_now_wants_a_session_is_greeted_again() -> None:
    async def call(url: str) -> Any:
        async with httpx.AsyncClient() as http:
            client = UpstreamClient(http)
            client._stateless[url] = "2025-11-25"  # it was stateless when this worker met it
            return await client.request(
                _upstream(url), "tools/call", {"name": "echo", "arguments": {"text": "hi"}}
            )

    with run_mcp_mock_server(token=TOKEN, stateful=True) as server:
        result = asyncio.run(call(server.url))
    assert result["content"][0]["text"] == "hi"

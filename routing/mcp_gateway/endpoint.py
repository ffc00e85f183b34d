"""The per-tenant MCP endpoint at `/mcp`: Streamable HTTP, stateless, served by the `mcp` SDK.

The caller authenticates with its virtual key (`Authorization: Bearer <key>`), exactly as on
`/v1`. `tools/list` aggregates the upstream servers of the key's tenant and shows only the tools
its team and key are granted, named `<server>__<tool>`. `tools/call` (routing/mcp_gateway/calls.py)
forwards to the upstream with the gateway's credential for it, never the caller's.

Both the stateless 2026-07-28 revision (one self-contained POST) and the handshake revisions
before it are answered by the SDK's session manager; no session outlives its request, so any
worker can answer any request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from routing.errors import GatewayError
from routing.mcp_gateway import metrics
from routing.mcp_gateway.calls import Caller, call_tool
from routing.mcp_gateway.models import TOOL_SEPARATOR
from routing.mcp_gateway.oauth import ClientCredentialsTokens, TokenFailure
from routing.mcp_gateway.table import Access, McpTable, Upstream, mcp_table_cache
from routing.mcp_gateway.token_exchange import (
    MAX_SUBJECT_TOKEN_CHARS,
    SUBJECT_HEADER,
    TokenExchanger,
)
from routing.mcp_gateway.upstream import JSON, UpstreamClient, UpstreamFailure
from routing.runtime import GatewayRuntime, get_runtime
from tenants.auth import bearer_token

logger = logging.getLogger(__name__)

PATH = "/mcp"
# An upstream's tool list is asked again after this long (agents list tools often).
TOOLS_TTL_S = 30.0
_STATE = "gateway_mcp_caller"


@dataclass
class _Listed:
    at: float
    tools: list[dict[str, Any]]
    names: frozenset[str] = frozenset()


class McpGateway:
    """One per worker runtime (`GatewayRuntime.mcp`): the SDK server, its session manager, the
    upstream client, the tokens held for upstreams, caches."""

    def __init__(self, runtime: GatewayRuntime) -> None:
        self.runtime = runtime
        self.table = mcp_table_cache()
        self.upstream = UpstreamClient(runtime.http)
        self.exchanger = TokenExchanger(runtime.http)
        self.client_tokens = ClientCredentialsTokens(runtime.http)
        self._listed: dict[int, _Listed] = {}
        self.server: Server[Any] = Server(
            "ai-gateway",
            instructions="Tools of this tenant's MCP servers, governed by the gateway.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self.server.middleware = []  # no per-message tracing spans: metrics are the gateway's
        self.manager = StreamableHTTPSessionManager(
            app=self.server,
            stateless=True,
            json_response=True,
            # Callers authenticate by key, never by cookie: no browser can ride on a session.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._running: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def started(self) -> None:
        if self._running is None:
            # Not the runtime's background work: that is awaited at shutdown, and this runs
            # until `aclose` (the ASGI lifespan's shutdown) cancels it.
            self._running = asyncio.get_running_loop().create_task(self._run())
        await self._ready.wait()

    async def aclose(self) -> None:
        """Stop serving (the runtime's shutdown, before its writer closes): tool calls still
        running are cut, and record themselves as interrupted (calls.py)."""
        if self._running is not None:
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running

    async def _run(self) -> None:
        async with self.manager.run():
            self._ready.set()
            await asyncio.Event().wait()  # until the worker's loop ends

    async def accesses(self, caller: Caller) -> list[Access]:
        table: McpTable = await self.table.get()
        return table.access(caller.identity)

    async def _bearer(self, upstream: Upstream, caller: Caller) -> str | None:
        """The token to send as `Authorization: Bearer`, or None (the server's own headers)."""
        if upstream.exchange is not None:
            return await self.exchanger.token_for(upstream, caller.subject_token)
        if upstream.client_credentials is not None:
            return await self.client_tokens.token_for(upstream)
        return None

    async def request(self, upstream: Upstream, caller: Caller, method: str, params: JSON) -> JSON:
        """`method` at `upstream` with the credential the gateway holds for it. A token the
        server refuses (401: it ran nothing) is dropped and replaced once: it may have been
        revoked or have expired early."""
        bearer = await self._bearer(upstream, caller)
        try:
            return await self.upstream.request(upstream, method, params, bearer=bearer)
        except UpstreamFailure as failure:
            if failure.code != 401 or bearer is None:
                raise
        if upstream.exchange is not None:
            self.exchanger.forget(upstream, caller.subject_token, bearer)
        else:
            self.client_tokens.forget(upstream, bearer)
        bearer = await self._bearer(upstream, caller)
        return await self.upstream.request(upstream, method, params, bearer=bearer)

    def lists(self, upstream: Upstream, tool: str) -> bool:
        """Whether `upstream` named `tool` the last time it listed its tools."""
        listed = self._listed.get(upstream.id)
        return listed is not None and tool in listed.names

    async def tools_of(self, upstream: Upstream, caller: Caller) -> list[dict[str, Any]]:
        if upstream.exchange is not None:  # listed as the caller, like its calls
            await self.exchanger.token_for(upstream, caller.subject_token)
        listed = self._listed.get(upstream.id)
        if listed is not None and time.monotonic() - listed.at < TOOLS_TTL_S:
            return listed.tools
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(20):  # pages; a server with more is cut off here
            params: dict[str, Any] = {"cursor": cursor} if cursor else {}
            result = await self.request(upstream, caller, "tools/list", params)
            page, cursor = result.get("tools"), result.get("nextCursor")
            if not isinstance(page, list) or not isinstance(cursor, str | None):
                raise UpstreamFailure("protocol", f"{upstream.name} listed its tools malformed")
            tools += [t for t in page if isinstance(t, dict)]
            if not cursor:
                break
        names = frozenset(t["name"] for t in tools if isinstance(t.get("name"), str))
        self._listed[upstream.id] = _Listed(time.monotonic(), tools, names)
        return tools

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = _caller(ctx)
        accesses = [
            access
            for access in await self.accesses(caller)
            # A server that acts for the end user is listed only to a caller that names one.
            if access.upstream.exchange is None or caller.subject_token
        ]
        # Every server at once: the slowest one, not their sum, bounds the answer.
        started = time.monotonic()
        listed = await asyncio.gather(
            *(self.tools_of(access.upstream, caller) for access in accesses),
            return_exceptions=True,
        )
        shown: list[types.Tool] = []
        for access, tools in zip(accesses, listed, strict=True):
            if isinstance(tools, BaseException):
                if not isinstance(tools, Exception):
                    raise tools
                # One unreachable or broken server does not hide the others' tools.
                known = isinstance(tools, UpstreamFailure | TokenFailure | TimeoutError)
                logger.log(
                    logging.WARNING if known else logging.ERROR,
                    "MCP server %s: tools/list failed: %s",
                    access.upstream.name,
                    tools if known else type(tools).__name__,
                    exc_info=None if known else tools,
                )
                continue
            for tool in tools:
                name = tool.get("name")
                if isinstance(name, str) and access.grant.allows(name):
                    namespaced = {**tool, "name": f"{access.upstream.name}{TOOL_SEPARATOR}{name}"}
                    try:
                        shown.append(types.Tool.model_validate(namespaced))
                    except ValueError:
                        logger.warning(
                            "MCP server %s: tool %r is malformed", access.upstream.name, name
                        )
        metrics.observe_list(time.monotonic() - started)
        return types.ListToolsResult(tools=shown)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await call_tool(self, _caller(ctx), params)


def _caller(ctx: ServerRequestContext[Any]) -> Caller:
    request = ctx.request
    caller = request.scope.get("state", {}).get(_STATE) if request is not None else None
    if not isinstance(caller, Caller):
        raise MCPError(types.INVALID_REQUEST, "not authenticated")
    return caller


def get_gateway() -> McpGateway:
    """The worker's MCP gateway, built on its runtime at the first MCP request (the runtime
    closes it at shutdown)."""
    runtime = get_runtime()
    if runtime.mcp is None:
        runtime.mcp = McpGateway(runtime)
    assert isinstance(runtime.mcp, McpGateway)
    return runtime.mcp


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1").strip()
    return ""


class _Headers:
    """The request's headers, as `bearer_token` reads them."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    def get(self, name: str, default: str = "") -> str:
        return _header(self.scope, name.lower().encode()) or default


class _RequestView:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.headers = _Headers(scope)


async def _refuse(send: Any, status: int, code: str, message: str) -> None:
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": types.INVALID_REQUEST, "message": message, "data": {"code": code}},
        }
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="ai-gateway"'))
    elif status == 405:
        headers.append((b"allow", b"POST, DELETE"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def mcp_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI app for `/mcp`: authenticate the key, then let the SDK serve the message."""
    if scope["path"].rstrip("/") != PATH:
        await _refuse(
            send, 404, "unknown_endpoint", f"No MCP endpoint at {scope['path']}: use {PATH}."
        )
        return
    gateway = get_gateway()
    try:
        identity = await gateway.runtime.keys.identify(bearer_token(_RequestView(scope)))  # type: ignore[arg-type]
    except GatewayError as error:
        await _refuse(send, error.status, error.code or "unauthorized", error.message)
        return
    if scope["method"] == "GET":
        # The endpoint is stateless and has nothing to push: a GET would hold an event stream
        # (and a connection) open for ever. The transport's spec allows a 405 here.
        message = "This endpoint offers no event stream: send JSON-RPC messages with POST."
        await _refuse(send, 405, "method_not_allowed", message)
        return
    content_type = _header(scope, b"content-type").lower()
    if scope["method"] == "POST" and not content_type.startswith("application/json"):
        # Refused here in the protocol's form; the SDK would answer in plain text.
        message = "Send JSON-RPC messages with Content-Type: application/json."
        await _refuse(send, 415, "unsupported_media_type", message)
        return
    caller = Caller(
        identity=identity,
        parent_request=_header(scope, b"x-gateway-parent-request")[:40],
        end_user=_header(scope, b"x-gateway-end-user")[:200],
        agent=_header(scope, b"user-agent")[:200],
        subject_token=_header(scope, SUBJECT_HEADER.encode())[:MAX_SUBJECT_TOKEN_CHARS],
    )
    scope = {**scope, "state": {**(scope.get("state") or {}), _STATE: caller}}
    await gateway.started()
    await gateway.manager.handle_request(scope, receive, send)

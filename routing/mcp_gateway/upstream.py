"""The hop to an upstream MCP server: Streamable HTTP over the gateway's shared HTTP client.

Messages are built and read with the SDK's types (`mcp_types`), but sent through the worker's
pooled `httpx` client rather than the SDK's own client: that client's transport enforces the
egress policy on every address it connects to (routing/core/egress_transport.py), which the
SDK's HTTP stack would not. Only http(s) URLs exist here; there is no stdio and nothing to run.

A server that answers `initialize` without a session id is stateless: later calls to it skip the
handshake and are one POST each. A stateful server gets the handshake on every call (its session
is closed after), which costs two more round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from routing.core.egress_transport import egress_refusal
from routing.mcp_gateway.table import Upstream

_ACCEPT = "application/json, text/event-stream"
_SESSION = "mcp-session-id"
_VERSION = "mcp-protocol-version"
CLIENT_INFO = {"name": "ai-gateway", "version": "1"}
JSON = dict[str, Any]


class UpstreamFailure(Exception):
    """The upstream call did not produce a result. `kind` is stable (audit, metrics)."""

    def __init__(self, kind: str, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.code = kind, message, code


@dataclass(frozen=True, slots=True)
class _Session:
    version: str
    session_id: str | None
    bearer: str | None = None  # a token exchanged for the end user's: replaces Authorization


class UpstreamClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._ids = itertools.count(1)
        # Servers known to need no session: url -> negotiated protocol version.
        self._stateless: dict[str, str] = {}

    async def request(
        self, upstream: Upstream, method: str, params: JSON, *, bearer: str | None = None
    ) -> JSON:
        """The JSON-RPC result of `method` at `upstream`, or UpstreamFailure. `bearer`: the
        token to send as `Authorization: Bearer` instead of the server's own credential."""
        async with asyncio.timeout(upstream.timeout_seconds):
            known = self._stateless.get(upstream.url)
            if known is not None:
                try:
                    session = _Session(known, None, bearer)
                    return await self._call(upstream, session, method, params)
                except UpstreamFailure as failure:
                    # A server that now wants a session says so with a 400 or 404: greet it.
                    if failure.code not in (400, 404):
                        raise
                    self._stateless.pop(upstream.url, None)
            session = await self._open(upstream, bearer)
            try:
                return await self._call(upstream, session, method, params)
            finally:
                if session.session_id is not None:
                    await self._close(upstream, session)

    async def _open(self, upstream: Upstream, bearer: str | None) -> _Session:
        params = {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        }
        body, headers = await self._post(
            upstream,
            _Session(LATEST_HANDSHAKE_VERSION, None, bearer),
            self._request("initialize", params),
        )
        result = _result(body)
        version = str(result.get("protocolVersion") or LATEST_HANDSHAKE_VERSION)
        session = _Session(version, headers.get(_SESSION), bearer)
        notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await self._post(upstream, session, notice, expect_body=False)
        if session.session_id is None:
            self._stateless[upstream.url] = version
        return session

    async def _close(self, upstream: Upstream, session: _Session) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server ends idle sessions itself
            await self.http.delete(upstream.url, headers=self._headers(upstream, session))

    async def _call(self, upstream: Upstream, session: _Session, method: str, params: JSON) -> JSON:
        message = self._request(method, params)
        body, _ = await self._post(upstream, session, message)
        return _result(body, request_id=message["id"])

    def _request(self, method: str, params: JSON) -> JSON:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}

    def _headers(self, upstream: Upstream, session: _Session) -> dict[str, str]:
        # Built from nothing but the server's own settings: no header of the agent's goes up.
        headers = {"content-type": "application/json", "accept": _ACCEPT}
        headers[_VERSION] = session.version
        if session.session_id is not None:
            headers[_SESSION] = session.session_id
        headers.update(upstream.headers)
        if session.bearer is not None:
            headers["authorization"] = f"Bearer {session.bearer}"
        return headers

    async def _post(
        self, upstream: Upstream, session: _Session, message: JSON, *, expect_body: bool = True
    ) -> tuple[list[JSON], httpx.Headers]:
        headers = self._headers(upstream, session)
        limit = upstream.max_result_bytes
        try:
            async with self.http.stream(
                "POST", upstream.url, content=orjson.dumps(message), headers=headers
            ) as response:
                if response.status_code >= 400:
                    raise UpstreamFailure(
                        "http_status",
                        f"{upstream.name} answered HTTP {response.status_code}"
                        + (" (its credential was refused)" if response.status_code == 401 else ""),
                        code=response.status_code,
                    )
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > limit:
                        raise UpstreamFailure(
                            "too_large",
                            f"the result from {upstream.name} is larger than {limit} bytes",
                        )
                content_type = response.headers.get("content-type", "")
                answer_headers = response.headers
        except httpx.HTTPError as exc:
            refusal = egress_refusal(exc)
            if refusal is not None:
                raise UpstreamFailure("egress_refused", f"egress policy: {refusal}") from exc
            if isinstance(exc, httpx.TimeoutException):
                raise UpstreamFailure("timeout", f"{upstream.name} did not answer in time") from exc
            raise UpstreamFailure("unreachable", f"{upstream.name} is unreachable: {exc}") from exc
        except (ValueError, TypeError, OSError) as exc:
            # The transport refused to send it at all (a URL it cannot use, say). Its text may
            # quote the URL and what it holds: only its kind is told.
            raise UpstreamFailure(
                "unreachable", f"{upstream.name} could not be called ({type(exc).__name__})"
            ) from exc
        if not expect_body:
            return [], answer_headers
        return _messages(bytes(raw), content_type), answer_headers


def _messages(raw: bytes, content_type: str) -> list[JSON]:
    """The JSON-RPC messages of an answer, whether plain JSON or an SSE stream."""
    try:
        if "text/event-stream" in content_type:
            found = []
            for event in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
                data = b"\n".join(
                    line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")
                )
                if data.strip():
                    found.append(orjson.loads(data))
            return found
        parsed = orjson.loads(raw) if raw.strip() else []
    except orjson.JSONDecodeError as exc:
        raise UpstreamFailure("protocol", f"the server's answer is not JSON: {exc}") from exc
    return parsed if isinstance(parsed, list) else [parsed]


def _result(messages: list[JSON], *, request_id: int | None = None) -> JSON:
    for message in messages:
        if not isinstance(message, dict) or "method" in message:
            continue  # a notification or a server request: nothing to relay in stateless mode
        if request_id is not None and message.get("id") != request_id:
            continue
        error = message.get("error")
        if isinstance(error, dict):
            raise UpstreamFailure(
                "upstream_error",
                str(error.get("message") or "error"),
                code=error.get("code") if isinstance(error.get("code"), int) else None,
            )
        result = message.get("result")
        if isinstance(result, dict):
            return result
    raise UpstreamFailure("protocol", "the server's answer holds no result")

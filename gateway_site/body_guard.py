"""Request bodies: refused over the size limit before they are read, and given a deadline.

Django's ASGI handler reads a whole body (to memory, then a temporary file) before any view runs,
and checks the size limit only against a declared Content-Length when the view reads
`request.body`: a chunked body of any size was read in full, and a client that stopped sending
half-way held its request open forever. This layer sits in front of everything (proxy, management
API, console) and answers in the API's own error format:

- a declared Content-Length over the limit: 413 at once, nothing read;
- a body that grows past the limit as it arrives (chunked): 413 as soon as it does;
- a body not complete within the deadline after its head: 408.

The deadline covers reading the request only; once the body is in, the response (a stream may
last minutes) is not timed. The connection is closed after a refusal: the rest of the body is
never read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from gateway_site.api.errors import ApiError
from gateway_site.memory import MemoryTrimmer
from routing.errors import GatewayError
from routing.wire import AnthropicWire

Scope = dict[str, Any]
Message = dict[str, Any]

_DISCONNECT: Message = {"type": "http.disconnect"}


@dataclass(slots=True)
class _Reading:
    received: int = 0
    complete: bool = False
    refusal: int | None = None  # 408 or 413, once decided
    response_started: bool = False


class RequestBodyGuard:
    def __init__(
        self,
        app: Any,
        *,
        max_bytes: int,
        timeout_seconds: float,
        trim_after_bytes: int = 1024 * 1024,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds
        # Bodies from this size on count as large: memory is given back after a burst of them.
        self.trim_after_bytes = trim_after_bytes
        self.trimmer = MemoryTrimmer()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, 413)
            return

        reading = _Reading()
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds

        async def guarded_receive() -> Message:
            if reading.complete:
                passed: Message = await receive()  # a disconnect while answering: no deadline
                return passed
            if reading.refusal is not None:
                return _DISCONNECT
            try:
                async with asyncio.timeout_at(deadline):
                    message: Message = await receive()
            except TimeoutError:
                reading.refusal = 408
                return _DISCONNECT  # Django stops reading and runs no view
            if message["type"] != "http.request":
                reading.complete = True
                return message
            reading.received += len(message.get("body", b""))
            if reading.received > self.max_bytes:
                reading.refusal = 413
                return _DISCONNECT
            reading.complete = not message.get("more_body", False)
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                reading.response_started = True
            await send(message)

        large = declared is not None and declared >= self.trim_after_bytes
        if large:
            self.trimmer.started()
        try:
            await self.app(scope, guarded_receive, watched_send)
        finally:
            if large:
                self.trimmer.finished()
        if reading.refusal is not None and not reading.response_started:
            await self._refuse(scope, send, reading.refusal)

    async def _refuse(self, scope: Scope, send: Any, status: int) -> None:
        content_type, body = _error_body(scope["path"], status, self.max_bytes)
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            # The rest of the body is never read, so the connection cannot carry another request.
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses these before the application sees them
    return None


_MESSAGES = {
    408: ("request_timeout", "The request body did not arrive within {timeout}."),
    413: ("request_too_large", "Request body is larger than the gateway's limit of {limit} bytes."),
}


def _error_body(path: str, status: int, limit: int) -> tuple[bytes, bytes]:
    code, template = _MESSAGES[status]
    message = template.format(limit=limit, timeout="the gateway's deadline")
    if path.startswith("/v1/"):
        error = GatewayError(status, message, code=code)
        body = orjson.dumps(error.body())
        if path.startswith("/v1/messages"):
            body = AnthropicWire().error_body(status, body)
        return b"application/json", body
    if path.startswith("/api/"):
        return b"application/json", orjson.dumps(ApiError(status, code, message).body())
    return b"text/plain; charset=utf-8", message.encode()

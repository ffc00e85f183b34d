"""Request handling tuned for the proxy: no per-request thread, no middleware on `/v1/`.

Under ASGI, Django runs every sync piece of a request (built-in middleware's process_request and
process_response, sync signal receivers, closing the response) through `sync_to_async` in a
thread-sensitive context created per request, which starts and joins a thread per request. The
proxy needs none of it: it authenticates by key (no session, CSRF or auth middleware), and its
database work runs on threads that release their connection at once (gateway_site/db_threads.py).
"""

import asyncio
import contextlib
import io
from typing import Any

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections, reset_queries
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch, URLResolver, get_resolver, set_script_prefix

# Resolved `/v1/` paths without parameters, kept per worker (there are a dozen).
_MAX_RESOLVED = 64


class ProxyASGIHandler(ASGIHandler):
    """Django's ASGI handler for `/v1/`: the URL resolver and views, without middleware."""

    _resolved: dict[tuple[URLResolver, str], ResolverMatch]

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)  # type: ignore[attr-defined]
        self._resolved = {}

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """The URL resolver's match, kept for paths without parameters: building a
        `ResolverMatch` was 5% of a proxied request's samples (docs/perf/). The resolver is
        part of the key, so a changed URLconf (tests override it) resolves afresh."""
        resolver = get_resolver(getattr(request, "urlconf", None))
        key = (resolver, request.path_info)
        match = self._resolved.get(key)
        if match is None:
            match = super().resolve_request(request)
            if not match.args and not match.kwargs and len(self._resolved) < _MAX_RESOLVED:
                self._resolved[key] = match
        request.resolver_match = match
        return match

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"the proxy serves HTTP only, not {scope['type']}")
        # No ThreadSensitiveContext: nothing of a proxied request runs on a per-request thread.
        await self.handle(scope, receive, send)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's `ASGIHandler.handle` without its two hops to a thread per request (closing the
        response and the request_finished signal, both run through `sync_to_async`): on the
        event loop they cost more than the rest of the handling (docs/perf/). What they do is
        safe here: the loop's thread holds no database connection (db_threads.py), so
        close_old_connections finds none, and the resource closers only close in-memory files."""
        try:
            body = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body)
        if request is None:
            assert error_response is not None
            await self.send_response(error_response, send)
            error_response.close()
            return

        async def process_request() -> HttpResponseBase:
            response = await self.run_get_response(request)
            # The client may go away while the answer is being sent.
            with contextlib.suppress(asyncio.CancelledError):
                await self.send_response(response, send)
            return response

        # As Django does: a client that disconnects cancels its request (a stream stops, and
        # its record says the client went away).
        listener = asyncio.create_task(self.listen_for_disconnect(receive))
        worker = asyncio.create_task(process_request())
        await asyncio.wait((listener, worker), return_when=asyncio.FIRST_COMPLETED)
        for task in (listener, worker):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif not task.cancelled() and not isinstance(task.exception(), RequestAborted):
                task.result()  # re-raises what the view did not handle, as Django does
        if worker.cancelled():
            signals.request_finished.send(sender=self.__class__)
        else:
            worker.result().close()

    async def read_body(self, receive: Any) -> io.BytesIO:
        """The body in memory: the body guard (body_guard.py) has already capped its size, so
        Django's spooled temporary file would only add work."""
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return io.BytesIO(b"".join(chunks))


def install() -> None:
    # At request start, these would hop to a thread to clean up connections that, under ASGI,
    # a fresh request cannot have. request_finished keeps close_old_connections: it runs in the
    # request's own thread when the response closes, where a console view's connection lives.
    signals.request_started.disconnect(close_old_connections)
    signals.request_started.disconnect(reset_queries)

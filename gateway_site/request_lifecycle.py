"""Request handling tuned for the proxy: no per-request thread, no middleware on `/v1/`.

Under ASGI, Django runs every sync piece of a request (built-in middleware's process_request and
process_response, sync signal receivers, closing the response) through `sync_to_async` in a
thread-sensitive context created per request, which starts and joins a thread per request. The
proxy needs none of it: it authenticates by key (no session, CSRF or auth middleware), and its
database work runs on threads that release their connection at once (gateway_site/db_threads.py).
"""

from typing import Any

from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections, reset_queries


class ProxyASGIHandler(ASGIHandler):
    """Django's ASGI handler for `/v1/`: the URL resolver and views, without middleware."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)  # type: ignore[attr-defined]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"the proxy serves HTTP only, not {scope['type']}")
        # No ThreadSensitiveContext: the one sync step left (closing the response) runs on
        # asgiref's shared thread instead of a thread started for this request.
        await self.handle(scope, receive, send)


def install() -> None:
    # At request start, these would hop to a thread to clean up connections that, under ASGI,
    # a fresh request cannot have. request_finished keeps close_old_connections: it runs in the
    # request's own thread when the response closes, where a console view's connection lives.
    signals.request_started.disconnect(close_old_connections)
    signals.request_started.disconnect(reset_queries)

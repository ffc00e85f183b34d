"""The ASGI application: static files, the proxy (`/v1/`) and everything else (console, admin)."""

import gc
import os
from typing import Any

from django.conf import settings
from django.core.asgi import get_asgi_application
from servestatic import ServeStaticASGI

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")

django_application = get_asgi_application()  # sets Django up; must come before the imports below

from gateway_site.body_guard import RequestBodyGuard  # noqa: E402
from gateway_site.request_lifecycle import ProxyASGIHandler  # noqa: E402

proxy_application = ProxyASGIHandler()


async def lifespan(receive: Any, send: Any) -> None:
    """Start-up builds the worker's runtime, whose first act is to record the calls of workers
    that died (audit/journal.py); shutdown closes it once in-flight requests are done."""
    from gateway_site.db_threads import run_db
    from routing.mcp_gateway.selectors import mcp_servers_exist
    from routing.runtime import close_runtime, get_runtime

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            get_runtime()
            if await run_db(mcp_servers_exist):
                _mcp_application()  # loaded now, not on the loop at the first tool call
            # What start-up loaded lives as long as the worker: out of the collector's sight, a
            # full collection (which the per-request churn triggers every few seconds) walks
            # only what came after, not the whole start-up heap: those walks stalled every
            # request in flight for 100-400 ms (docs/quotas.md, "What it costs").
            gc.collect()
            gc.freeze()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_runtime()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _mcp_application() -> Any:
    """The MCP endpoint. Its SDK (about 20 MiB) is loaded only by workers that serve MCP: at
    start-up when an MCP server is configured, else at the first `/mcp` request."""
    from routing.mcp_gateway.endpoint import mcp_application

    return mcp_application


async def refuse_websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The gateway speaks HTTP only. A client that tries a WebSocket first (Codex opens one to
    `/v1/responses` before streaming over HTTP) gets `426 Upgrade Required`, which such clients
    take as "use HTTP" at once; a failed handshake would be retried as an outage."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})  # the server answers 403
        return
    body = (
        b'{"error":{"message":"This gateway does not serve WebSockets: send the request over '
        b'HTTP.","type":"invalid_request_error","param":null,"code":"websocket_unsupported"}}'
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "websocket.http.response.start", "status": 426, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Send proxy traffic past Django's middleware stack; the console keeps all of it."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "websocket":
        await refuse_websocket(scope, receive, send)
    elif scope["type"] == "http" and scope["path"].startswith("/v1/"):
        await proxy_application(scope, receive, send)
    elif scope["type"] == "http" and (scope["path"] == "/mcp" or scope["path"].startswith("/mcp/")):
        # Agents' tools: authenticated by key like /v1, served by the mcp SDK (docs/mcp.md).
        await _mcp_application()(scope, receive, send)
    else:
        await django_application(scope, receive, send)


# Static files (console assets, API docs) are answered before Django; bodies are checked first.
application = RequestBodyGuard(
    ServeStaticASGI(
        route, root=settings.STATIC_ROOT, prefix=settings.STATIC_URL, autorefresh=settings.DEBUG
    ),
    max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    timeout_seconds=settings.REQUEST_BODY_TIMEOUT_SECONDS,
)

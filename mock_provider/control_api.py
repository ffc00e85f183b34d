"""Control endpoints (`/_mock/...`, `/health`): how tests steer and inspect the mock.

POST   /_mock/config    replace the runtime overrides (`{}` resets); answers the result
GET    /_mock/config    startup config, runtime overrides, effective config
GET    /_mock/requests  the request log, oldest first
DELETE /_mock/requests  clear the request log
GET    /_mock/stats     request counts: total, per path, per status, per mixed fault
DELETE /_mock/stats     zero the counts
POST   /_mock/reset     all of the above back to the startup state
GET    /health          200 {"status": "ok"}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from mock_provider.config import ConfigError, config_to_dict

if TYPE_CHECKING:
    from mock_provider.app import MockApp

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message}}


def _config_view(app: MockApp) -> dict[str, Any]:
    return {
        "startup": config_to_dict(app.startup_config),
        "runtime": app.runtime_overrides,
        "effective": config_to_dict(app.config),
    }


def _stats(app: MockApp) -> dict[str, Any]:
    return {
        "total": sum(app.by_path.values()),
        "by_path": dict(app.by_path),
        "by_status": {str(status): n for status, n in app.by_status.items()},
        "by_fault": dict(app.by_fault),
    }


def _route(app: MockApp, method: str, path: str, raw: bytes) -> tuple[int, Any]:
    if path == "/health":
        return 200, {"status": "ok"}
    if path == "/_mock/config" and method == "POST":
        try:
            overrides = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            return 400, _error("body must be JSON")
        if not isinstance(overrides, dict):
            return 400, _error("body must be a JSON object")
        try:
            app.set_runtime(overrides)
        except (ConfigError, TypeError) as exc:
            return 400, _error(str(exc))
        return 200, _config_view(app)
    if path == "/_mock/config" and method == "GET":
        return 200, _config_view(app)
    if path == "/_mock/requests" and method == "GET":
        return 200, list(app.requests)
    if path == "/_mock/requests" and method == "DELETE":
        cleared = len(app.requests)
        app.requests.clear()
        return 200, {"cleared": cleared}
    if path == "/_mock/stats" and method == "GET":
        return 200, _stats(app)
    if path == "/_mock/stats" and method == "DELETE":
        app.by_path.clear()
        app.by_status.clear()
        app.by_fault.clear()
        return 200, {"status": "ok"}
    if path == "/_mock/reset" and method == "POST":
        app.reset()
        return 200, {"status": "ok"}
    return 404, _error(f"no control endpoint {method} {path}")


async def handle_control(
    app: MockApp, scope: MutableMapping[str, Any], raw: bytes, send: Send
) -> None:
    status, payload = _route(app, scope["method"], scope["path"], raw)
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

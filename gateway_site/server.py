"""Starting the gateway: `python -m gateway_site.server --host … --port … [--workers N]`.

Every way of starting it (scripts/run_demo.sh, the live-server tests, the bench, production) goes
through here, so the protections that live in the HTTP server rather than in Django are the same
everywhere and are set from the environment (docs/operations.md, "Slow clients"):

- a connection must deliver a request's head (request line and headers) within
  GATEWAY_HEADER_TIMEOUT_SECONDS of connecting, or of the first byte of its next request; uvicorn
  itself has no such deadline, so an idle or half-sent head held a socket forever;
- a head is at most GATEWAY_MAX_HEADER_BYTES;
- an idle kept-alive connection closes after GATEWAY_KEEP_ALIVE_SECONDS;
- past GATEWAY_MAX_CONNECTIONS connections a worker answers 503 instead of taking more work;
- on SIGTERM a worker stops accepting and lets its calls finish for GATEWAY_SHUTDOWN_GRACE_SECONDS;
- X-Forwarded-For and X-Forwarded-Proto are believed only from GATEWAY_TRUSTED_PROXIES (uvicorn's
  own default believes them from 127.0.0.1, which in a demo or a test is every client).

The body's deadline and size limit need the request's path to answer in the API's own format, so
they are in the application (gateway_site/body_guard.py).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import ipaddress
from dataclasses import dataclass
from functools import cache
from typing import Any

import uvicorn
import uvicorn.config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway_site.env import SettingError, envfloat, envint, envlist


@dataclass(frozen=True, slots=True)
class ServerSettings:
    header_timeout_seconds: float
    max_header_bytes: int
    keep_alive_seconds: int
    max_connections: int
    # On SIGTERM: stop accepting, let calls in flight (streams included) finish for this long,
    # then cancel what is left (recorded as such); the audit writer is flushed either way.
    shutdown_grace_seconds: float
    # Addresses and networks of the reverse proxies in front; empty: the peer's own address.
    trusted_proxies: tuple[str, ...]


def parse_trusted_proxies(items: list[str]) -> tuple[str, ...]:
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingError(
                f"GATEWAY_TRUSTED_PROXIES: {item!r} is not an IP address or network"
            ) from None
    return tuple(items)


@cache
def server_settings() -> ServerSettings:
    settings = ServerSettings(
        header_timeout_seconds=envfloat("GATEWAY_HEADER_TIMEOUT_SECONDS", 10.0),
        max_header_bytes=envint("GATEWAY_MAX_HEADER_BYTES", 64 * 1024),
        keep_alive_seconds=envint("GATEWAY_KEEP_ALIVE_SECONDS", 5),
        shutdown_grace_seconds=envfloat("GATEWAY_SHUTDOWN_GRACE_SECONDS", 30.0),
        max_connections=envint("GATEWAY_MAX_CONNECTIONS", 1024),
        trusted_proxies=parse_trusted_proxies(envlist("GATEWAY_TRUSTED_PROXIES", [])),
    )
    if min(settings.header_timeout_seconds, settings.keep_alive_seconds) <= 0:
        raise SettingError(
            "GATEWAY_HEADER_TIMEOUT_SECONDS and GATEWAY_KEEP_ALIVE_SECONDS must be > 0"
        )
    if settings.max_header_bytes <= 0 or settings.max_connections <= 0:
        raise SettingError("GATEWAY_MAX_HEADER_BYTES and GATEWAY_MAX_CONNECTIONS must be > 0")
    return settings


class HeadTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools) with a deadline and a size limit for a request's
    head. The body and the response are not timed here: a streamed answer may last minutes."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_deadline is None:
            self._arm_head_deadline()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to any parser error, ours included (raised from a parser callback).
        if self._head_bytes > server_settings().max_header_bytes:
            self._refuse(b"431 Request Header Fields Too Large")
        else:
            super().send_400_response(msg)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > server_settings().max_header_bytes:
            raise HeadTooLarge  # httptools stops parsing; uvicorn calls send_400_response

    def _arm_head_deadline(self) -> None:
        timeout = server_settings().header_timeout_seconds
        self._head_deadline = self.loop.call_later(timeout, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            # Silently, as nginx does: an answer could interleave with a pipelined response.
            self.transport.close()

    def _refuse(self, status: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            head = b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            self.transport.write(head)
        self.transport.close()


def uvicorn_options() -> dict[str, object]:
    """The server options every start of the gateway uses (host, port and workers aside)."""
    settings = server_settings()
    return {
        "http": "gateway_site.server:GuardedHttpToolsProtocol",
        "loop": "uvloop",
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.max_connections,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds) or None,
        "access_log": False,
        # The Server header names the software to every scanner; nobody needs it.
        "server_header": False,
        "log_config": _log_config(),
    }


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, its tracebacks without what a refused row quoted (log_format.py)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["default"]["()"] = "gateway_site.log_format.ServerLogFormatter"
    return config


def build_parser() -> argparse.ArgumentParser:
    """The command line (tests/test_deploy.py checks the deployment files' against it)."""
    parser = argparse.ArgumentParser(prog="python -m gateway_site.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    uvicorn.run(
        "gateway_site.asgi:application",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        **uvicorn_options(),  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()

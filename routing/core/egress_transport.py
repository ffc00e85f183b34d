"""The egress policy at connect time: an HTTP client that reaches only addresses it allows.

A base URL is checked when it is saved, but its host name may resolve elsewhere later (DNS
rebinding: public when saved, 169.254.169.254 when the credential is sent). So the addresses a
connection is actually opened to are checked here, after resolution, in the transport itself:
- aiohttp (the default transport): a resolver that drops forbidden addresses;
- httpx's own pool: a network backend that resolves, filters and connects to an allowed address.
IP literals never reach a resolver, so `EgressGuard` checks every request's host first.

A refusal is an `httpx.ConnectError` whose cause chain holds the `EgressRefused` (see
`egress_refusal`): immediate, never a hang.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from urllib.parse import urlsplit

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client import _RequestContextManager  # what ClientSession.request returns
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

from routing.core.egress import EgressPolicy, EgressRefused


class EgressResolver(AbstractResolver):
    """aiohttp resolver: the inner resolver's answers, less those the policy forbids."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self._policy.check_host(host)  # before any lookup: metadata names, the allow list
        results = await self._inner.resolve(host, port, family)
        allowed = set(self._policy.allowed_addresses(host, [r["host"] for r in results]))
        return [result for result in results if result["host"] in allowed]

    async def close(self) -> None:
        await self._inner.close()


class EgressNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore backend: resolves the host itself and connects only to an allowed address."""

    def __init__(self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self._policy = policy
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            self._policy.check_host(host)
            async with asyncio.timeout(timeout):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            found = list(dict.fromkeys(str(info[4][0]) for info in infos))
            addresses = self._policy.allowed_addresses(host, found)
        except (OSError, TimeoutError) as exc:  # EgressRefused is an OSError too
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                # TLS still verifies and sends the host name: httpcore takes it from the URL.
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # allowed_addresses never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an egress destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


Answer = tuple[int, Mapping[str, str], bytes]  # status, headers (case-insensitive), body


class EgressGuard(httpx.AsyncBaseTransport):
    """Checks each request's host before the inner transport connects (IP literals included)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, policy: EgressPolicy) -> None:
        self._inner = inner
        self._policy = policy

    @property
    def direct(self) -> bool:
        """Whether `post_read` can go straight to the pool (aiohttp's)."""
        return isinstance(self._inner, AiohttpTransport)

    async def post_read(
        self, url: str, headers: Mapping[str, str], body: bytes, limits: httpx.Timeout
    ) -> Answer:
        """POST `body` and read the whole answer on aiohttp's pool, without httpx's request and
        response objects around it (a third of the event loop's time, docs/perf/)."""
        with map_aiohttp_exceptions():
            async with self._post(url, headers, body, limits) as response:
                return response.status, response.headers, await response.read()

    async def open_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, limits: httpx.Timeout
    ) -> OpenStream:
        """POST `body` and return the answer once its headers are in, its body to be read as it
        arrives (httpx's request, response and byte stream around aiohttp were about 12% of a
        streamed request, docs/perf/)."""
        with map_aiohttp_exceptions():
            return OpenStream(await self._post(url, headers, body, limits))

    def _post(
        self, url: str, headers: Mapping[str, str], body: bytes, limits: httpx.Timeout
    ) -> _RequestContextManager:
        """A POST on aiohttp's pool with the same checks, errors and timeouts as the httpx
        path: the host against the policy first (the resolver checks the addresses), aiohttp's
        errors as the httpx errors its transport maps them to (the caller's
        `map_aiohttp_exceptions`), httpx's timeouts in aiohttp's terms."""
        inner = self._inner
        assert isinstance(inner, AiohttpTransport)
        try:
            self._policy.check_host(urlsplit(url).hostname or "")
        except EgressRefused as refusal:
            raise httpx.ConnectError(str(refusal)) from refusal
        if not isinstance(inner.client, aiohttp.ClientSession):
            inner.client = inner.get_client()
        deadlines = aiohttp.ClientTimeout(
            sock_connect=limits.connect, sock_read=limits.read, connect=limits.pool
        )
        return inner.client.request(
            "POST",
            url,
            headers=headers,
            data=body,
            allow_redirects=False,
            compress=False,
            timeout=deadlines,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            self._policy.check_host(request.url.host)
        except EgressRefused as refusal:
            raise httpx.ConnectError(str(refusal), request=request) from refusal
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class OpenStream:
    """A streamed answer on aiohttp's pool, with the part of httpx's `Response` the adapters
    use; aiohttp's errors come out as the httpx errors its transport maps them to."""

    __slots__ = ("_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers  # case-insensitive

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives (content-encoding already undone by aiohttp)."""
        with map_aiohttp_exceptions():
            async for chunk in self._response.content.iter_any():
                yield chunk

    aiter_bytes = aiter_raw

    async def aread(self) -> bytes:
        with map_aiohttp_exceptions():
            return await self._response.read()

    async def aclose(self) -> None:
        """Back to the pool if the body was read to its end, the connection closed otherwise."""
        self._response.release()


def egress_transport(
    policy: EgressPolicy,
    *,
    kind: str = "aiohttp",
    limits: httpx.Limits,
    resolver: AbstractResolver | None = None,
) -> httpx.AsyncBaseTransport:
    """The transport for an `httpx.AsyncClient` that sends only where `policy` allows.

    `kind`: "aiohttp" (httpx API over aiohttp's pool, ADR 0003) or "httpx" (httpx's own pool).
    `resolver`: the aiohttp resolver underneath the policy (tests inject one).
    """
    if kind == "aiohttp":
        ssl_context = httpx.create_ssl_context()

        def session() -> aiohttp.ClientSession:
            # Called once, on the first request, inside the event loop the session belongs to.
            connector = aiohttp.TCPConnector(
                limit=limits.max_connections or 0,
                keepalive_timeout=limits.keepalive_expiry,
                ssl=ssl_context,
                resolver=EgressResolver(policy, resolver),
            )
            return aiohttp.ClientSession(connector=connector)

        return EgressGuard(AiohttpTransport(limits=limits, client=session), policy)
    inner = httpx.AsyncHTTPTransport(limits=limits)
    # httpx has no parameter for httpcore's network backend; its pool keeps it here.
    pool = inner._pool
    pool._network_backend = EgressNetworkBackend(policy, pool._network_backend)
    return EgressGuard(inner, policy)


def egress_refusal(exc: BaseException) -> EgressRefused | None:
    """The policy refusal behind a transport error, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, EgressRefused):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None

"""What each worker shares between requests: one pooled HTTP client, adapters, caches, writer.

Built lazily once per event loop (the HTTP pool and the writer belong to their loop).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

import httpx
from django.conf import settings

from audit.journal import Journal, Orphan, recover_orphans
from audit.maintenance import search_index_tidy
from audit.writer import AuditWriter
from gateway_site.db_threads import run_db
from routing.cache.engine import ResponseCache
from routing.core.egress_transport import Answer, EgressGuard, OpenStream, egress_transport
from routing.core.providers.anthropic import AnthropicAdapter
from routing.core.providers.base import ProviderAdapter
from routing.core.providers.openai import OpenAIAdapter
from routing.core.providers.openai_responses import OpenAIResponsesAdapter
from routing.core.strategy import HealthBook
from routing.egress import egress_policy
from routing.guardrails.table import PolicySnapshot
from routing.prompts.registry import prompt_snapshot
from routing.responses_state.proxy import ResponseState
from routing.shared_health import SharedHealth, build_shared_health
from routing.table import RoutingTableCache
from tenants.auth import KeyAuthenticator
from tenants.quotas.core.checks import Release
from tenants.quotas.engine import to_nanos
from tenants.quotas.gate import build_engine

logger = logging.getLogger(__name__)


class WorkerService(Protocol):
    """Something a worker starts on demand and closes at shutdown."""

    async def aclose(self) -> None: ...


ADAPTERS: dict[str, type[ProviderAdapter]] = {
    OpenAIAdapter.kind: OpenAIAdapter,
    AnthropicAdapter.kind: AnthropicAdapter,
    OpenAIResponsesAdapter.kind: OpenAIResponsesAdapter,
}


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: the one upstream client serves every tenant, so a cookie one
    provider set while answering one tenant must never ride along on another's request. It also
    spares every answer the cookie parsing (about a tenth of the client's work, docs/perf/)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class UpstreamClient(httpx.AsyncClient):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._cookies = _NoCookies()

    async def open_stream(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> OpenStream | httpx.Response:
        """POST and return once the answer's headers are in (a provider's stream): straight on
        the aiohttp pool when that is the transport, through httpx otherwise."""
        transport = self._transport
        if isinstance(transport, EgressGuard) and transport.direct:
            return await transport.open_stream(url, headers, body, self.timeout)
        request = self.build_request("POST", url, content=body, headers=headers)
        return await self.send(request, stream=True)

    async def post_read(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """POST and read the whole answer (a provider's non-streamed reply): straight on the
        aiohttp pool when that is the transport, through httpx otherwise."""
        transport = self._transport
        if isinstance(transport, EgressGuard) and transport.direct:
            return await transport.post_read(url, headers, body, self.timeout)
        response = await self.post(url, content=body, headers=headers)
        return response.status_code, response.headers, response.content


def build_http_client() -> httpx.AsyncClient:
    config = settings.GATEWAY
    limits = httpx.Limits(
        max_connections=config.upstream_max_connections,
        max_keepalive_connections=config.upstream_max_connections,
        keepalive_expiry=30,
    )
    timeout = httpx.Timeout(config.upstream_timeout_seconds, connect=10.0)
    # httpx's own pool slows down sharply under concurrency; aiohttp's does not (ADR 0003).
    # Either way the transport connects only where the egress policy allows (docs/config.md).
    transport = egress_transport(egress_policy(), kind=config.upstream_transport, limits=limits)
    return UpstreamClient(transport=transport, timeout=timeout)


class GatewayRuntime:
    def __init__(self) -> None:
        self.http = build_http_client()
        self.adapters = {kind: adapter(self.http) for kind, adapter in ADAPTERS.items()}
        self.keys = KeyAuthenticator()
        self.routes = RoutingTableCache()
        self.prompts = prompt_snapshot()  # the prompt registry (routing/prompts/)
        self.guard_policies = PolicySnapshot()  # guardrail policies by scope (routing/guardrails/)
        self.health = HealthBook(
            breaker_failures=settings.GATEWAY.breaker_failures,
            breaker_cooldown_s=settings.GATEWAY.breaker_cooldown_seconds,
        )
        self.shared_health: SharedHealth | None = build_shared_health(self.health)
        self.quotas = build_engine()
        self.responses = ResponseState()  # Responses API `store` / `previous_response_id`
        self.audit = AuditWriter(batch_max=settings.GATEWAY.audit_batch_max_size)
        settings.GATEWAY_JOURNAL_DIR.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(settings.GATEWAY_JOURNAL_DIR)
        self.cache = ResponseCache()
        # The MCP endpoint's (routing/mcp_gateway/endpoint.py), built at its first request; typed
        # by what the runtime does with it, so the runtime does not import the endpoint.
        self.mcp: WorkerService | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._detached: set[asyncio.Task[Any]] = set()  # calls run on past their client
        self._sweeper: asyncio.Task[Any] | None = None
        self._tidier: asyncio.Task[Any] | None = None
        self._health_reader: asyncio.Task[Any] | None = None
        self.closing = False  # set at shutdown: calls cut from here on are interrupted, not failed

    def start(self) -> None:
        """Background work of a worker's runtime, once its event loop runs."""
        if self._sweeper is None:
            self._sweeper = self.spawn(self._sweep_journals())
        if self._tidier is None and settings.GATEWAY_SEARCH_INDEX_TIDY_SECONDS > 0:
            self._tidier = self.spawn(self._tidy_search_index())
        if self._health_reader is None and self.shared_health is not None:
            self._health_reader = self.spawn(self.shared_health.run())

    def adapter(self, kind: str) -> ProviderAdapter:
        return self.adapters[kind]

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work that must finish even if the request that started it is cancelled."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def detach(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a call on past its request's cancellation (its client left: Call.run_to_record).
        Not waited for at shutdown: the worker's closing cuts it like any call in flight, and
        it is recorded as interrupted, within the operator's grace."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        return task

    async def _sweep_journals(self) -> None:
        """Record the calls of workers that died (at start-up, then periodically)."""
        while True:
            await self._recover_journals()
            await asyncio.sleep(settings.GATEWAY_JOURNAL_SWEEP_SECONDS)

    async def _recover_journals(self) -> None:
        directory = settings.GATEWAY_JOURNAL_DIR
        try:
            orphans = await run_db(lambda: recover_orphans(directory))
            for orphan in orphans:
                await self.quotas.release_reserved(_settlement(orphan), orphan.request_id)
        except Exception:
            logger.exception("journal: recovery failed; retrying later")

    async def _tidy_search_index(self) -> None:
        """Keep the audit search index's merges off the commits requests wait for."""
        while True:
            await asyncio.sleep(settings.GATEWAY_SEARCH_INDEX_TIDY_SECONDS)
            try:
                await run_db(search_index_tidy)
            except Exception:
                logger.exception("audit: tidying the search index failed; retrying later")

    async def aclose(self) -> None:
        """Release the worker's connections (shutdown, and tests that run the proxy in-process)."""
        self.closing = True
        loops = (self._sweeper, self._tidier, self._health_reader)
        for task in loops:
            if task is not None:
                task.cancel()
        if self.mcp is not None:  # its cut tool calls are recorded while the writer is open
            await self.mcp.aclose()
        await self._cut_detached()
        await self._finish_background(loops, timeout_s=10)
        await self.http.aclose()
        await self.audit.aclose()
        await self.cache.aclose()
        if self.shared_health is not None:
            await self.shared_health.aclose()
        self.journal.close()
        # Calls cut by the shutdown (its grace ran out) are recorded now, as interrupted, rather
        # than at the next start: a worker scaled down for good leaves nothing unrecorded.
        await self._recover_journals()

    async def _cut_detached(self) -> None:
        """Calls still with their provider when the grace ran out are cut first: the journal's
        recovery below records each as interrupted and gives its reservation back. Left to run,
        they raced that recovery for the record, or settled after the settlements were sent."""
        for task in self._detached:
            task.cancel()
        if self._detached:
            await asyncio.wait(list(self._detached), timeout=5)

    async def _finish_background(self, loops: tuple[Any, ...], *, timeout_s: float) -> None:
        """Work the requests left behind ends first (a stream's final record, a settlement), and
        what that work starts in turn: a stream's completion settles its reservation only once
        its record is written, as a task of its own. Then the settlements not sent yet (they go at
        the end of an event-loop pass, or with an admission of that pass) are sent and waited for."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while left := [t for t in self._background if t not in loops]:
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.warning(
                    "shutdown: %d background tasks still running, not waited for", len(left)
                )
                break
            await asyncio.wait(left, timeout=remaining)
        try:
            await asyncio.wait_for(self.quotas.store.drain(), max(deadline - loop.time(), 1.0))
        except Exception:  # the store is down or slow: the leases expire on their own
            logger.warning("shutdown: waiting settlements could not be sent", exc_info=True)


_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GatewayRuntime] = (
    weakref.WeakKeyDictionary()
)


def all_runtimes() -> list[GatewayRuntime]:
    """This process's runtimes (one per event loop), for metrics read outside the loop."""
    return list(_runtimes.values())


def get_runtime() -> GatewayRuntime:
    loop = asyncio.get_running_loop()
    runtime = _runtimes.get(loop)
    if runtime is None:
        runtime = _runtimes[loop] = GatewayRuntime()
        runtime.start()
    return runtime


async def close_runtime() -> None:
    runtime = _runtimes.pop(asyncio.get_running_loop(), None)
    if runtime is not None:
        await runtime.aclose()


def _settlement(orphan: Orphan) -> Release:
    """What a dead worker's call gives back. Recorded by recovery: its whole reservation, at
    $0. Recorded by its worker, which may or may not have settled it before dying: its lease,
    and its recorded cost where its reservation is still held, so it is charged once either way
    (the token windows are left as they are: correcting them twice would be worse)."""
    reserved = Release.from_json(orphan.release)
    if orphan.recorded_cost is None:
        return reserved
    cost = to_nanos(orphan.recorded_cost)
    return Release(
        concurrency_keys=reserved.concurrency_keys,
        budget_spend=tuple((key, cost) for key, _ in reserved.budget_spend),
        if_still_reserved=True,
    )

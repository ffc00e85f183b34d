"""`/metrics` (Prometheus text format) and `/readyz` (can this worker serve traffic now?)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from audit.observability import backpressure
from gateway_site.db_threads import run_db
from gateway_site.redis_clients import async_client
from routing import selectors as routing_selectors
from routing.runtime import all_runtimes, get_runtime

_PROBE_TIMEOUT_S = 2.0


def health_states() -> Iterator[tuple[str, bool, int]]:
    """Every worker loop's view of every deployment it has tried (for the health collector).

    Names come from the loop's routing table in memory: a scrape never touches the database, so
    it is safe from any thread or event loop.
    """
    for runtime in all_runtimes():
        table = runtime.routes.loaded()
        names = {
            target.deployment_id: target.deployment_name
            for resolved in (table.models.values() if table else ())
            for target in resolved.targets
        }
        for deployment_id, (cooling, failures) in runtime.health.snapshot().items():
            yield names.get(deployment_id, str(deployment_id)), cooling, failures


def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.GATEWAY_METRICS_TOKEN
    if token and request.headers.get("authorization") != f"Bearer {token}":
        return HttpResponse("metrics need the configured bearer token\n", status=401)
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several worker processes: merge their files (prometheus_client's multiprocess mode).
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _routes_without_deployment(served: set[str]) -> list[str]:
    aliases = routing_selectors.active_route_aliases()
    return sorted(alias for alias in aliases if alias not in served)


async def _redis() -> str:
    client = async_client(socket_timeout=_PROBE_TIMEOUT_S)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return "ok"


async def _probe(name: str, checks: dict[str, str], probe: object) -> None:
    try:
        checks[name] = await asyncio.wait_for(probe, _PROBE_TIMEOUT_S)  # type: ignore[arg-type]
    except Exception as exc:
        checks[name] = f"failed: {type(exc).__name__}: {exc}"[:300]


async def readyz(request: HttpRequest) -> HttpResponse:
    """Ready when the database and Redis answer, the audit writer runs, and every route has
    at least one deployment that is active and not cooling down in this worker.

    While the writer knows the database is down, the database is reported failed without
    asking it again: a probe would wait for the pool's timeout on a thread (asgiref lets no
    timeout cut a thread short), and the gateway's other requests would wait behind it."""
    checks: dict[str, str] = {}
    runtime = get_runtime()
    outage = runtime.audit.outage()
    if outage is not None:
        checks["database"] = f"failed: {outage}"
    else:
        await _probe("database", checks, run_db(_database))
    if settings.REDIS_URL:
        await _probe("redis", checks, _redis())
    if not runtime.audit.alive():
        checks["audit_writer"] = "failed: the writer has stopped"
    elif outage is not None:
        checks["audit_writer"] = "failed: records cannot be written"
    else:
        checks["audit_writer"] = "ok"
    overload = backpressure.problems(runtime.audit.backlog())
    checks["backpressure"] = "failed: " + "; ".join(overload) if overload else "ok"
    try:
        table = await runtime.routes.get()
        cooling = sorted(
            name
            for name, resolved in table.models.items()
            if resolved.route_alias and all(runtime.health.cooling(t) for t in resolved.targets)
        )
        empty: list[str] = []
        if outage is None:
            empty = await run_db(lambda: _routes_without_deployment(set(table.models)))
        problems = [f"{a}: every deployment cooling down" for a in cooling]
        problems += [f"{a}: no active deployment" for a in empty]
        checks["routes"] = "failed: " + "; ".join(problems) if problems else "ok"
    except Exception as exc:
        checks["routes"] = f"failed: {type(exc).__name__}: {exc}"[:300]
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )

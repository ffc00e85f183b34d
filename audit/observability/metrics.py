"""Prometheus metrics of the proxy, observed once per call when its record is settled.

Labels are bounded on purpose: deployments, providers, routes, statuses and error causes come
from configuration or code, never from callers (no end user, key or free-text model label; a
model nobody serves is counted as ""). Names follow OpenTelemetry's GenAI conventions where
they define one (`gen_ai_client_operation_duration_seconds`, `..._time_to_first_token_...`),
and `gateway_*` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from audit.entries import AuditEntry
from routing.core.types import Attempt

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)

REQUESTS = Counter(
    "gateway_requests",
    "Proxied requests by outcome.",
    ["endpoint", "route", "deployment", "provider", "status"],
)
DURATION = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Time from the request's arrival to its last byte, as the gateway saw it.",
    ["operation", "deployment", "provider", "status"],
    buckets=_LATENCY_BUCKETS,
)
TTFT = Histogram(
    "gen_ai_server_time_to_first_token_seconds",
    "Time to the first streamed event, for streams.",
    ["deployment", "provider"],
    buckets=_TTFT_BUCKETS,
)
TOKENS = Counter(
    "gen_ai_client_token_usage",
    "Tokens reported by providers (or counted, for streams cut short).",
    ["deployment", "provider", "token_type"],
)
COST = Counter("gateway_cost_usd", "Cost charged, in USD.", ["deployment", "provider"])
CACHE_HITS = Counter(
    "gateway_cache_hits", "Requests answered partly from a provider cache.", ["deployment"]
)
# The gateway's own response cache (response_cache/): lookups by outcome, and what hits saved.
RESPONSE_CACHE = Counter(
    "gateway_response_cache_lookups",
    "Requests on caching routes by cache status (hit, miss, bypass) and match (exact, semantic).",
    ["route", "category", "status", "match"],
)
RESPONSE_CACHE_SAVED = Counter(
    "gateway_response_cache_saved_usd", "What cache hits would have cost, in USD.", ["route"]
)
GUARDRAIL_FINDINGS = Counter(
    "gateway_guardrail_findings", "Findings of request and response policies.", ["kind"]
)
REJECTIONS = Counter(
    "gateway_rejections", "Requests refused by the gateway (limits, budgets, policy).", ["code"]
)
UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors",
    "Failed attempts at a deployment, by cause (including those a fallback recovered).",
    ["deployment", "provider", "cause"],
)
FALLBACKS = Counter(
    "gateway_fallbacks",
    "Attempts that failed and were followed by another deployment, by cause.",
    ["route", "deployment", "cause"],
)

_KIND_MAX = 40  # finding kinds are the policies' own names; cut anything longer


def _finding_kind(finding: object) -> str:
    if isinstance(finding, dict):
        kind = finding.get("check") or finding.get("kind") or finding.get("type") or "other"
        return str(kind)[:_KIND_MAX]
    return "other"


def observe_call(entry: AuditEntry, attempts: Sequence[Attempt]) -> None:
    """Count one finished call (called once, where the proxy settles its record)."""
    deployment, provider = entry.deployment_name, entry.provider_name
    route = entry.route_alias or deployment
    REQUESTS.labels(entry.endpoint, route, deployment, provider, entry.status).inc()
    if entry.latency_ms is not None:
        DURATION.labels(entry.endpoint, deployment, provider, entry.status).observe(
            entry.latency_ms / 1000
        )
    if entry.ttft_ms is not None:
        TTFT.labels(deployment, provider).observe(entry.ttft_ms / 1000)
    if entry.prompt_tokens or entry.completion_tokens:
        TOKENS.labels(deployment, provider, "input").inc(entry.prompt_tokens)
        TOKENS.labels(deployment, provider, "output").inc(entry.completion_tokens)
    if entry.cached_tokens:
        TOKENS.labels(deployment, provider, "cached_input").inc(entry.cached_tokens)
        CACHE_HITS.labels(deployment).inc()
    if entry.cost_usd:
        COST.labels(deployment, provider).inc(float(entry.cost_usd))
    cache = (entry.routing or {}).get("cache")
    if cache:
        category = entry.routing.get("category") or ""
        match = cache.get("kind", "")
        RESPONSE_CACHE.labels(route, category, cache["status"], match).inc()
        if saved := cache.get("saved_usd"):
            RESPONSE_CACHE_SAVED.labels(route).inc(float(saved))
    for finding in entry.guardrail_findings or ():
        GUARDRAIL_FINDINGS.labels(_finding_kind(finding)).inc()
    if entry.status == "rejected":
        REJECTIONS.labels(entry.error_type or "rejected").inc()
    for index, attempt in enumerate(attempts):
        if not attempt.error or attempt.error == "cooling_down":
            continue
        UPSTREAM_ERRORS.labels(attempt.deployment, attempt.provider, attempt.error).inc()
        if index + 1 < len(attempts):
            FALLBACKS.labels(route, attempt.deployment, attempt.error).inc()


class DeploymentHealthCollector(Collector):
    """Each deployment's cooldown / breaker state, read from the workers' health books at scrape.

    `sources` returns (deployment name, cooling, consecutive failures) for each worker's view of
    each deployment; several event loops may see the same deployment (worst state wins).
    """

    def __init__(self, sources: Callable[[], Iterable[tuple[str, bool, int]]]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        cooling = GaugeMetricFamily(
            "gateway_deployment_cooling",
            "1 while a deployment is cooling down (Retry-After or open breaker).",
            labels=["deployment"],
        )
        failures = GaugeMetricFamily(
            "gateway_deployment_consecutive_failures",
            "Consecutive retryable failures of a deployment (the breaker opens at its threshold).",
            labels=["deployment"],
        )
        for name, is_cooling, consecutive in self._states():
            cooling.add_metric([name], 1.0 if is_cooling else 0.0)
            failures.add_metric([name], float(consecutive))
        yield cooling
        yield failures

    def _states(self) -> Iterable[tuple[str, bool, int]]:
        states: dict[str, tuple[bool, int]] = {}
        for name, is_cooling, consecutive in self._sources():
            was_cooling, was_failures = states.get(name, (False, 0))
            states[name] = (was_cooling or is_cooling, max(was_failures, consecutive))
        return [(name, c, f) for name, (c, f) in sorted(states.items())]

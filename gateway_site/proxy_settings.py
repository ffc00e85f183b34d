"""The proxy's own settings, typed (settings.GATEWAY is one of these)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProxySettings:
    # How long a looked-up key stays cached in a worker; bounds how late a revocation bites.
    key_cache_seconds: float
    # How long the routing table (providers, deployments, routes) stays cached in a worker.
    routes_cache_seconds: float
    upstream_timeout_seconds: float
    upstream_max_connections: int
    # "aiohttp" (httpx API over aiohttp's pool, faster under concurrency) or "httpx".
    upstream_transport: str
    # Most audit records committed in one transaction by the group-commit writer.
    audit_batch_max_size: int
    # The URL clients use to reach the gateway (printed in snippets and the console).
    public_url: str
    # How long a call to the limit and budget counters (Redis) may take before it counts as failed.
    quota_store_timeout_seconds: float = 2.0
    quota_store_max_connections: int = 64
    # Consecutive failures that open a deployment's circuit breaker (0: never), and for how long.
    breaker_failures: int = 3
    breaker_cooldown_seconds: float = 30.0

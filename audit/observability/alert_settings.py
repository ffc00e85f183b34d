"""Alert thresholds and destinations (built from the environment in settings.py; no Django)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AlertSettings:
    webhook_urls: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    window_minutes: int = 5
    # Provider errors: share of a deployment's attempts in the window, once it had enough.
    error_rate: float = 0.2
    error_min_attempts: int = 10
    # Cost: a team's spend over the last hour vs the same hour on the previous days.
    cost_spike_factor: float = 3.0
    cost_spike_min_usd: float = 1.0
    baseline_days: int = 7
    # PII: share of a tenant's requests with a PII finding vs the trailing day's share.
    pii_spike_factor: float = 3.0
    pii_min_findings: int = 5
    # End-to-end p99 latency of the gateway over the window.
    latency_p99_ms: float = 30_000.0
    latency_min_requests: int = 20


@dataclass(frozen=True, slots=True)
class ReadinessSettings:
    """When `/readyz` turns a process away before it is overloaded (audit/observability/
    backpressure.py)."""

    audit_backlog: int = 2000  # records queued or owed to the database
    pool_waiting: int = 4  # callers waiting for a database connection
    loop_lag_ms: float = 500.0  # worst event-loop lag over the last 3 s

"""Scenario 6: what a failover adds to a request (429 on the primary → answer from the secondary).

Two more mock providers: one answers 429 to everything (OpenAI format, no Retry-After), the other
is an Anthropic-format provider with a fixed latency, the secondary. Through the same gateway,
side by side at the same even rate:

- *secondary only*: a route whose only deployment is the secondary (its own latency, proxied);
- *failover*: a route primary → secondary, so every answer comes after a 429.

Run once with the circuit breaker off (`GATEWAY_BREAKER_FAILURES=0`), so every request really
asks the primary first, and once with the default breaker (steady state: after three 429s the
primary is passed over while it cools down).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import db
from bench.hey import Target
from bench.stats import RunResult, added

SECONDARY_LATENCY_MS = 20
RATE = 50.0  # requests per second, evenly spaced: latency, not queueing
GOAL_ADDED_P50_MS = 5.0
ROUTE_SECONDARY = "bench-secondary"
ROUTE_FAILOVER = "bench-failover"

CONFIG_YAML = """\
# Written by `python -m bench` (scenario 6); applied with `manage.py apply_config`.
version: 1
providers:
  - name: bench-limited
    kind: openai
    base_url: http://127.0.0.1:{limited_port}/v1
  - name: bench-anthropic
    kind: anthropic
    base_url: http://127.0.0.1:{secondary_port}
deployments:
  - name: bench-limited-gpt
    provider: bench-limited
    upstream_model: mock-gpt
    price: {{input_per_mtok: 2.5, output_per_mtok: 10}}
  - name: bench-claude
    provider: bench-anthropic
    upstream_model: mock-claude
    price: {{input_per_mtok: 3, output_per_mtok: 15}}
routes:
  - alias: {secondary}
    targets: [bench-claude]
  - alias: {failover}
    targets: [bench-limited-gpt, bench-claude]
"""

# Records of the failover route since a mark: all of them, and those whose attempts are exactly
# a 429 from the primary then a 200 from the secondary.
_ATTEMPTS_SINCE = """
SELECT count(*),
       count(*) FILTER (
         WHERE jsonb_array_length(attempts) = 2
           AND attempts->0->>'deployment' = 'bench-limited-gpt'
           AND attempts->0->>'status' = '429'
           AND attempts->1->>'deployment' = 'bench-claude'
           AND attempts->1->>'status' = '200'),
       count(*) FILTER (WHERE attempts->0->>'error' = 'cooling_down')
FROM audit_auditrecord WHERE route_alias = %s AND id > %s
"""


def seed(workdir: Path, limited_port: int, secondary_port: int, env: dict[str, str]) -> None:
    path = workdir / "failover.yaml"
    path.write_text(
        CONFIG_YAML.format(
            limited_port=limited_port,
            secondary_port=secondary_port,
            secondary=ROUTE_SECONDARY,
            failover=ROUTE_FAILOVER,
        )
    )
    db.manage(["apply_config", str(path)], env)


def mock_args(status_429: bool) -> list[str]:
    if status_429:
        return ["--status", "429"]
    return ["--latency-ms", str(SECONDARY_LATENCY_MS)]


def target(port: int, key: str, route: str) -> Target:
    body = json.dumps(
        {
            "model": route,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Say hello to the benchmark in five words."}],
        }
    )
    return Target(
        f"via gateway ({route})",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        body,
        (("Authorization", f"Bearer {key}"),),
    )


@dataclass
class AttemptCount:
    records: int = 0
    both_attempts: int = 0  # a 429 from the primary, then a 200 from the secondary
    passed_over: int = 0  # the primary was cooling down and not asked


def attempts_since(database_url: str, max_id: int) -> AttemptCount:
    with psycopg.connect(db.conninfo(database_url), autocommit=True) as conn:
        row = conn.execute(_ATTEMPTS_SINCE, (ROUTE_FAILOVER, max_id)).fetchone()
    return AttemptCount(*row) if row else AttemptCount()


@dataclass
class FailoverRun:
    """One gateway's side-by-side pair: the secondary alone, then the failover route."""

    breaker: str  # "off" or "default"
    secondary: RunResult
    failover: RunResult
    attempts: AttemptCount

    @property
    def added_p50(self) -> float | None:
        return added(self.failover.p50_ms, self.secondary.p50_ms)

    @property
    def added_p99(self) -> float | None:
        return added(self.failover.p99_ms, self.secondary.p99_ms)

"""The bench's PostgreSQL database: created if missing, migrated, seeded, and its audit rows counted."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")

TENANT = "bench"
ROUTE = "bench"
UPSTREAM_MODEL = "mock-gpt"

# Providers, a deployment, a route and a tenant: the smallest config a proxied call needs.
SEED_YAML = """\
# Written by `python -m bench`; applied with `manage.py apply_config` (idempotent).
version: 1
providers:
  - name: bench-mock
    kind: openai
    base_url: http://127.0.0.1:{mock_port}/v1
deployments:
  - name: bench-gpt
    provider: bench-mock
    upstream_model: {upstream_model}
    price: {{input_per_mtok: 2.5, output_per_mtok: 10}}
routes:
  - alias: {route}
    targets: [bench-gpt]
tenants:
  - slug: {tenant}
    name: Benchmark
    teams:
      - slug: load
        name: Load
        keys:
          - name: bench-key
            value: env:BENCH_KEY
    # Scenario 2c: a team whose requests pass every level of limits and budgets (none refuses).
  - slug: {tenant}-quota
    name: Benchmark with limits
    limits: {{requests_per_minute: 10000000, tokens_per_minute: 1000000000, max_concurrent: 10000}}
    budgets: [{{amount_usd: 1000000000, period: month}}]
    end_users:
      - id: "*"
        limits: {{requests_per_minute: 10000000, tokens_per_minute: 1000000000}}
        budgets: [{{amount_usd: 1000000000, period: day}}]
    teams:
      - slug: load
        name: Load
        limits: {{requests_per_minute: 10000000, tokens_per_minute: 1000000000}}
        budgets: [{{amount_usd: 1000000000, period: month}}]
        keys:
          - name: bench-quota-key
            value: env:BENCH_QUOTA_KEY
            limits: {{requests_per_minute: 10000000, max_concurrent: 10000}}
            budgets: [{{amount_usd: 1000000000, period: week}}]
"""

_TENANT_ROWS = (
    "SELECT count(*) FROM audit_auditrecord"
    " WHERE tenant_id IN (SELECT id FROM tenants_tenant WHERE slug IN (%s, %s || '-quota'))"
)
_STATUS_SINCE = (
    "SELECT status, count(*) FROM audit_auditrecord"
    " WHERE tenant_id IN (SELECT id FROM tenants_tenant WHERE slug IN (%s, %s || '-quota'))"
    " AND id > %s"
    " GROUP BY status"
)
_MAX_ID = "SELECT coalesce(max(id), 0) FROM audit_auditrecord"


def new_key() -> str:
    # The gateway's own key format: a prefix and 40 URL-safe characters.
    return "gw-" + secrets.token_urlsafe(30)[:40]


def conninfo(database_url: str) -> str:
    """psycopg wants postgresql://; dj-database-url also accepts postgres://."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def ensure_database(database_url: str) -> bool:
    """Create the database if it is missing (connecting to `test`, else `postgres`); True if created."""
    parts = urlsplit(conninfo(database_url))
    name = parts.path.lstrip("/")
    last_error: Exception | None = None
    for admin_db in ("test", "postgres"):
        try:
            with psycopg.connect(
                urlunsplit(parts._replace(path="/" + admin_db)), autocommit=True, connect_timeout=5
            ) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    return False
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                return True
        except psycopg.OperationalError as exc:
            last_error = exc
    raise RuntimeError(f"cannot reach PostgreSQL for {database_url}: {last_error}")


def manage(args: list[str], env: Mapping[str, str], tree: Path = ROOT) -> str:
    """Run a Django management command of `tree`; its output is shown only when it fails."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=tree,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def seed(workdir: Path, mock_port: int, env: Mapping[str, str], tree: Path = ROOT) -> None:
    """Apply the bench config with `tree`'s code; `env` must carry BENCH_KEY (the key is never
    written to disk)."""
    path = workdir / "bench.yaml"
    path.write_text(
        SEED_YAML.format(
            mock_port=mock_port, upstream_model=UPSTREAM_MODEL, route=ROUTE, tenant=TENANT
        )
    )
    manage(["apply_config", str(path)], env, tree)


@dataclass(frozen=True)
class AuditMark:
    """Where the audit table stood before a gateway ran: the tenant's rows, and the newest id."""

    rows: int
    max_id: int


class Audit:
    def __init__(self, database_url: str) -> None:
        self.conninfo = conninfo(database_url)

    def mark(self) -> AuditMark:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            rows = conn.execute(_TENANT_ROWS, (TENANT, TENANT)).fetchone()
            max_id = conn.execute(_MAX_ID).fetchone()
        return AuditMark(rows=rows[0] if rows else 0, max_id=max_id[0] if max_id else 0)

    def since(self, mark: AuditMark, settle_s: float = 5.0) -> tuple[int, Counter[str]]:
        """Rows added for the tenant since `mark`, and those rows counted by status.

        A stream's row is completed just after its last chunk reaches the client, so the
        count waits (up to `settle_s`) for `in_progress` rows to settle; any left are real.
        """
        deadline = time.monotonic() + settle_s
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while True:
                rows = conn.execute(_TENANT_ROWS, (TENANT, TENANT)).fetchone()
                by_status = Counter(
                    {
                        str(status): int(count)
                        for status, count in conn.execute(
                            _STATUS_SINCE, (TENANT, TENANT, mark.max_id)
                        )
                    }
                )
                if not by_status.get("in_progress") or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        return (rows[0] if rows else 0) - mark.rows, by_status

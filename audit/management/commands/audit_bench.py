"""`manage.py audit_bench --rows 1000000`: the compliance search against a month of generated records.

Run it against a scratch PostgreSQL database (it adds a `bench-audit` tenant and its records,
which the append-only triggers then keep). Results go to stdout as a Markdown table; the numbers
in docs/benchmarks.md#audit-search come from it. Not a unit test: it takes minutes.
"""

from __future__ import annotations

import resource
import statistics
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from audit.export import ExportRun
from audit.sealer import audit_seal_pending
from audit.selectors import AuditFilters, audit_records_page
from tenants import services as tenants
from tenants.models import ApiKey, Team, Tenant

WORDS = [
    "portfolio",
    "rebalance",
    "bonds",
    "equities",
    "pension",
    "mortgage",
    "dividend",
    "retirement",
    "allocation",
    "volatility",
    "hedge",
    "currency",
    "inflation",
    "annuity",
    "trust",
    "estate",
    "tax",
    "isa",
    "liquidity",
    "emerging",
    "markets",
    "treasury",
    "yield",
    "credit",
    "risk",
    "client",
    "review",
    "suitability",
    "fees",
    "transfer",
    "withdrawal",
    "deposit",
    "statement",
    "compliance",
    "complaint",
]

_GENERATE = """
INSERT INTO audit_auditrecord (
    request_id, tenant_id, team_id, api_key_id, end_user, feature, client_context, endpoint,
    model_requested, route_alias, deployment_name, provider_name, upstream_model, stream,
    attempts, request_body, response_body, tool_calls, tool_results, guardrail_findings,
    prompt_name, prompt_version, prompt_label, prompt_fingerprint, quota, usage_estimated,
    status, http_status, error_type, error_message, prompt_tokens, completion_tokens,
    cached_tokens, cost_usd, latency_ms, ttft_ms, started_at, completed_at)
SELECT
    'bench_' || %(run)s || '_' || g, %(tenant)s, %(team)s, %(key)s,
    'advisor-' || (g %% 2000), 'advice', jsonb_build_object('client_id', 'C-' || (g %% 50000)),
    'chat.completions', (ARRAY['advisor-chat','demo','gpt-4o','claude','mini'])[1 + g %% 5],
    '', 'mock-gpt', (ARRAY['openai','anthropic'])[1 + g %% 2], 'mock-gpt-2026-01-01', false,
    '[]'::jsonb,
    jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role', 'user',
        'content', 'Client ' || (g %% 50000) || ' asks about ' || w.words[1 + g %% 37] || ' and '
        || w.words[1 + (g / 37) %% 37] || ' of their ' || w.words[1 + (g / 1369) %% 37]))),
    jsonb_build_object('choices', jsonb_build_array(jsonb_build_object('message',
        jsonb_build_object('role', 'assistant', 'content', 'Regarding ' || w.words[1 + (g / 7) %% 37]
        || ', we suggest a review of ' || w.words[1 + (g / 11) %% 37] || '.')))),
    '[]'::jsonb, '[]'::jsonb,
    CASE WHEN g %% 97 = 0 THEN '[{"check": "pii", "type": "email", "action": "mask"}]'::jsonb
         ELSE '[]'::jsonb END,
    '', NULL, '', '', '{}'::jsonb, false,
    CASE WHEN g %% 50 = 0 THEN 'upstream_error' ELSE 'success' END, 200, '', '',
    20 + g %% 300, 10 + g %% 500, 0, (g %% 1000) / 100000.0, 200 + g %% 900, NULL,
    %(start)s::timestamptz + (g::bigint * %(step)s) * interval '1 microsecond',
    %(start)s::timestamptz + (g::bigint * %(step)s) * interval '1 microsecond' + interval '1 second'
FROM generate_series(%(first)s, %(last)s) AS g, (SELECT %(words)s::text[] AS words) AS w
"""


class Command(BaseCommand):
    help = "Benchmark the compliance search on a month of generated audit records (PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--reuse", action="store_true", help="use the records already made")
        parser.add_argument("--searches-only", action="store_true", help="skip sealing and export")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("the audit benchmark needs PostgreSQL (set DATABASE_URL)")
        tenant, team, key = self._world()
        now = timezone.now()
        if not options["reuse"]:
            self._generate(tenant, team, key, options["rows"], now)
        rows = _count(tenant)
        self.stdout.write(f"\n{rows:,} records of tenant {tenant.slug} over 30 days\n")
        self._searches(tenant, team, now)
        if not options["searches_only"]:
            self._seal()
            self._export(tenant)

    def _seal(self) -> None:
        began = time.perf_counter()
        sealed = audit_seal_pending(limit=10**9)
        elapsed = time.perf_counter() - began
        if sealed:
            self.stdout.write(
                f"\nsealer: chained {sealed:,} records in {elapsed:.0f} s ({sealed / elapsed:,.0f}/s)"
            )

    def _world(self) -> tuple[Tenant, Team, ApiKey]:
        tenant = tenants.tenant_apply(slug="bench-audit", name="Audit benchmark")
        team = tenants.team_apply(tenant=tenant, slug="desk", name="Desk", allowed_models=[])
        key = ApiKey.objects.filter(team=team).first() or tenants.key_create(team=team, name="b")[0]
        return tenant, team, key

    def _generate(self, tenant: Tenant, team: Team, key: ApiKey, rows: int, now: Any) -> None:
        start = now - timedelta(days=30)
        step = int(30 * 86400 * 1_000_000 / rows)
        run = str(int(time.time()))
        began = time.perf_counter()
        for first in range(1, rows + 1, 100_000):
            with connection.cursor() as cursor:
                cursor.execute(
                    _GENERATE,
                    {
                        "run": run,
                        "tenant": tenant.pk,
                        "team": team.pk,
                        "key": key.pk,
                        "start": start,
                        "step": step,
                        "first": first,
                        "last": min(first + 99_999, rows),
                        "words": WORDS,
                    },
                )
            self.stdout.write(f"  generated {min(first + 99_999, rows):,} rows")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditrecord")
        self.stdout.write(f"generated {rows:,} rows in {time.perf_counter() - began:.0f} s")

    def _searches(self, tenant: Tenant, team: Team, now: Any) -> None:
        month = {"since": now - timedelta(days=30), "until": now}
        cases: list[tuple[str, AuditFilters, bool]] = [
            ("last 30 days, first page", AuditFilters(**month), False),
            ("one advisor, 30 days", AuditFilters(end_user="advisor-42", **month), False),
            (
                "one team, last 7 days",
                AuditFilters(team_id=team.pk, since=now - timedelta(days=7)),
                False,
            ),
            ("text 'pension annuity'", AuditFilters(text="pension annuity", **month), False),
            ("text as typed 'retir'", AuditFilters(text="retir", **month), False),
            ("text + advisor", AuditFilters(text="mortgage", end_user="advisor-7", **month), False),
            (
                "model + status error",
                AuditFilters(model="claude", status="upstream_error", **month),
                False,
            ),
            ("guardrail finding", AuditFilters(finding="email", **month), False),
            (
                "cost >= 0.009",
                AuditFilters(min_cost=Decimal("0.009"), **month),
                False,
            ),
            ("page 200 by keyset", AuditFilters(**month), True),
            ("rare text, no match", AuditFilters(text="zebra", **month), False),
        ]
        self.stdout.write("| search (50 per page) | first run | median of 5 |\n|---|---:|---:|")
        for label, filters, deep in cases:
            before = _cursor_of_page(tenant, filters, 200) if deep else None
            timings = [_timed(tenant, filters, before) for _ in range(6)]
            self.stdout.write(
                f"| {label} | {timings[0] * 1000:.0f} ms | {statistics.median(timings[1:]) * 1000:.0f} ms |"
            )

    def _export(self, tenant: Tenant) -> None:
        user = _BenchUser()
        for fmt in ("csv", "jsonl"):
            run = ExportRun(
                tenant=tenant,
                filters=AuditFilters(since=timezone.now() - timedelta(days=3)),
                format=fmt,
                user=user,
            )
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            began = time.perf_counter()
            size = sum(len(chunk) for chunk in run.chunks())
            elapsed = time.perf_counter() - began
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.stdout.write(
                f"export {fmt}: {run.rows:,} rows, {size / 1e6:.0f} MB in {elapsed:.1f} s "
                f"({run.rows / elapsed:,.0f} rows/s); peak RSS grew {(peak - before) / 1024:.0f} MB"
            )


class _BenchUser:
    pk = None

    def get_username(self) -> str:
        return "audit-bench"


def _count(tenant: Tenant) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditrecord WHERE tenant_id = %s", [tenant.pk])
        return int(cursor.fetchone()[0])


def _cursor_of_page(tenant: Tenant, filters: AuditFilters, page: int) -> Any:
    before = None
    for _ in range(page - 1):
        _, before = audit_records_page(tenant_id=tenant.pk, filters=filters, before=before)
    return before


def _timed(tenant: Tenant, filters: AuditFilters, before: Any) -> float:
    began = time.perf_counter()
    audit_records_page(tenant_id=tenant.pk, filters=filters, before=before)
    return time.perf_counter() - began

"""Measure the rollups over many generated records (docs/benchmarks.md). Use a scratch database."""

from __future__ import annotations

import json
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models

from audit.models import AuditRecord
from billing.models import Granularity, UsageRollup
from billing.rollups import rollup_window
from tenants import services as tenants
from tenants.models import ApiKey

# Generated columns; every other column gets its model default.
_GENERATED = {
    "request_id": "'bench_' || g",
    "end_user": "'user-' || (mod(g, 50))",
    "feature": "(ARRAY['chat','search','summarise','extract'])[1 + mod(g, 4)]",
    "endpoint": "'chat.completions'",
    "model_requested": "(ARRAY['gpt-4o','gpt-4o-mini','claude-sonnet-4'])[1 + mod(g, 3)]",
    "deployment_name": "(ARRAY['gpt-4o','gpt-4o-mini','claude-sonnet-4'])[1 + mod(g, 3)]",
    "status": "CASE WHEN mod(g, 50) = 0 THEN 'upstream_error' ELSE 'success' END",
    "http_status": "200",
    "prompt_tokens": "(mod(g, 2000))",
    "completion_tokens": "(mod(g, 700))",
    "cached_tokens": "CASE WHEN mod(g, 5) = 0 THEN 256 ELSE 0 END",
    "cost_usd": "((mod(g, 997)) / 100000.0)",
    "latency_ms": "(50 + mod(g * 7919, 3000))",
    "started_at": "%s + (g * {step}) * interval '1 millisecond'",
    "completed_at": "%s + (g * {step}) * interval '1 millisecond'",
}


def _literal(field: models.Field[Any, Any]) -> Any:
    default = field.get_default()
    return json.dumps(default) if isinstance(field, models.JSONField) else default


class Command(BaseCommand):
    help = "Generate N audit records over D days, then time the hourly and daily rollups."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--records", type=int, default=1_000_000)
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("the rollup benchmark needs PostgreSQL")
        n, days = options["records"], options["days"]
        start = datetime(2026, 1, 1, tzinfo=UTC)
        self._generate(n, days, start)
        end = start + timedelta(days=days)
        for granularity, step in (
            (Granularity.DAY, timedelta(days=1)),
            (Granularity.HOUR, timedelta(hours=1)),
        ):
            began, rss_before = (
                time.perf_counter(),
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            )
            bucket = start
            while bucket < end:
                rollup_window(granularity=granularity, start=bucket, end=bucket + step)
                bucket += step
            seconds = time.perf_counter() - began
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            rows = UsageRollup.objects.filter(granularity=granularity).count()
            self.stdout.write(
                f"{granularity}: {n} records -> {rows} rows in {seconds:.1f} s; "
                f"peak RSS {rss / 1024:.0f} MiB (was {rss_before / 1024:.0f} MiB)"
            )

    def _generate(self, n: int, days: int, start: datetime) -> None:
        tenant = tenants.tenant_apply(slug="bench", name="Bench")
        keys = []
        for slug in ("research", "support", "sales"):
            team = tenants.team_apply(tenant=tenant, slug=slug, name=slug, allowed_models=[])
            key = ApiKey.objects.filter(team=team).first()
            keys.append(key or tenants.key_create(team=team, name=f"{slug}-bench")[0])
        UsageRollup.objects.all().delete()
        existing = AuditRecord.objects.filter(tenant=tenant).count()
        if existing:
            # Audit records are append-only: a second run measures the records already there.
            self.stdout.write(f"reusing {existing} records already generated")
            return
        columns, expressions, params = [], [], []
        key_ids = ",".join(str(k.id) for k in keys)
        team_ids = ",".join(str(k.team_id) for k in keys)
        fixed = {
            "tenant_id": str(tenant.id),
            "team_id": f"(ARRAY[{team_ids}])[1 + mod(g, 3)]",
            "api_key_id": f"(ARRAY[{key_ids}])[1 + mod(g, 3)]",
        }
        step = days * 86_400_000 // n
        for field in AuditRecord._meta.concrete_fields:
            if field.primary_key:
                continue
            columns.append(field.column)
            name = field.attname
            if name in fixed:
                expressions.append(fixed[name])
            elif name in _GENERATED:
                expressions.append(_GENERATED[name].replace("{step}", str(step)))
                if "%s" in expressions[-1]:
                    params.append(start)
            else:
                expressions.append("%s")
                params.append(_literal(field))
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {AuditRecord._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
                f"SELECT {', '.join(expressions)} FROM generate_series(1::bigint, %s) AS g",
                [*params, n],
            )
            cursor.execute(f"ANALYZE {AuditRecord._meta.db_table}")
        self.stdout.write(f"generated {n} records in {time.perf_counter() - began:.1f} s")

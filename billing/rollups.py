"""Hourly and daily rollups of the audit records: rebuilt per window, so re-running is harmless.

The grouping runs in the database (one GROUP BY per window), so memory follows the number of
groups, not of records. A window is deleted and re-inserted in one transaction. Records still
`in_progress` (a stream not finished yet) are left for a later run: the last hours are rolled
again on every run, which also picks up late-finishing streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    CharField,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from audit.models import AuditStatus
from billing.models import Granularity, RollupWatermark, UsageRollup
from billing.records import (
    first_record_at,
    late_record_times,
    latest_record_id,
    open_record_ids,
    purged_tenants,
    record_times,
    records_between,
)

STEP = {Granularity.HOUR: timedelta(hours=1), Granularity.DAY: timedelta(days=1)}
# Windows rolled again on every run: streams finish late, and the current bucket is partial.
REROLL = {Granularity.HOUR: 3, Granularity.DAY: 2}
_ERRORS = (AuditStatus.UPSTREAM_ERROR, AuditStatus.FAILED)
_BATCH = 2000


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont; other databases get no latency percentiles."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float) -> None:
        super().__init__(expression, fraction=fraction)


class JsonArrayLength(Func):
    """How many items a JSON array holds (the deployments a request tried)."""

    function = "jsonb_array_length"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, function="json_array_length", **extra)


def bucket_floor(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(UTC)
    floored = moment.replace(minute=0, second=0, microsecond=0)
    if granularity == Granularity.DAY:
        floored = floored.replace(hour=0)
    return floored


def _window_rows(granularity: str, start: datetime, end: datetime) -> Iterator[UsageRollup]:
    records = records_between(start, end).exclude(status=AuditStatus.IN_PROGRESS)
    aggregates: dict[str, Any] = {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status__in=_ERRORS)),
        "rejected": Count("id", filter=Q(status=AuditStatus.REJECTED)),
        "cache_hits": Count("id", filter=Q(cached_tokens__gt=0)),
        "prompt": Sum("prompt_tokens"),
        "completion": Sum("completion_tokens"),
        "cached": Sum("cached_tokens"),
        "cost": Sum("cost_usd"),
        "fallbacks": Count("id", filter=Q(tried__gt=1)),
    }
    if connection.vendor == "postgresql":
        aggregates |= {
            "p50": Percentile("latency_ms", 0.5),
            "p95": Percentile("latency_ms", 0.95),
            "p99": Percentile("latency_ms", 0.99),
            "ttft50": Percentile("ttft_ms", 0.5),
            "ttft95": Percentile("ttft_ms", 0.95),
            "ttft99": Percentile("ttft_ms", 0.99),
        }
    groups = (
        records.annotate(
            bucket=Trunc("started_at", granularity, tzinfo=UTC),
            # The deployment that served the request: never the alias asked for or a name the
            # gateway refused, so "By model" has one kind of key ("" when nothing served).
            model=F("deployment_name"),
            provider=F("provider_name"),
            route=F("route_alias"),
            category=Coalesce(KT("routing__category"), Value(""), output_field=CharField()),
            tried=JsonArrayLength("attempts"),
        )
        .values(
            "bucket",
            "tenant_id",
            "team_id",
            "api_key_id",
            "end_user",
            "feature",
            "model",
            "provider",
            "route",
            "category",
        )
        .annotate(**aggregates)
        .order_by()
    )
    for group in groups.iterator(chunk_size=_BATCH):
        yield UsageRollup(
            granularity=granularity,
            bucket_start=group["bucket"],
            tenant_id=group["tenant_id"],
            team_id=group["team_id"],
            api_key_id=group["api_key_id"],
            end_user=group["end_user"],
            feature=group["feature"],
            model=group["model"] or "",
            provider=group["provider"] or "",
            route=group["route"] or "",
            category=group["category"] or "",
            fallbacks=group["fallbacks"],
            requests=group["requests"],
            errors=group["errors"],
            rejected=group["rejected"],
            cache_hits=group["cache_hits"],
            prompt_tokens=group["prompt"] or 0,
            completion_tokens=group["completion"] or 0,
            cached_tokens=group["cached"] or 0,
            cost_usd=group["cost"] or 0,
            latency_p50_ms=group.get("p50"),
            latency_p95_ms=group.get("p95"),
            latency_p99_ms=group.get("p99"),
            ttft_p50_ms=group.get("ttft50"),
            ttft_p95_ms=group.get("ttft95"),
            ttft_p99_ms=group.get("ttft99"),
        )


@transaction.atomic
def rollup_window(*, granularity: str, start: datetime, end: datetime) -> int:
    """Replace the rollup rows of the buckets in [start, end) with fresh ones; returns the count.

    Not for a tenant whose records of the window retention has begun to delete (a short
    retention): its rows stay as they were rolled while its records were there."""
    kept = purged_tenants(start)
    UsageRollup.objects.filter(
        granularity=granularity, bucket_start__gte=start, bucket_start__lt=end
    ).exclude(tenant_id__in=kept).delete()
    written, batch = 0, []
    for row in _window_rows(granularity, start, end):
        if row.tenant_id in kept:
            continue
        batch.append(row)
        if len(batch) >= _BATCH:
            UsageRollup.objects.bulk_create(batch)
            written, batch = written + len(batch), []
    UsageRollup.objects.bulk_create(batch)
    return written + len(batch)


def rollup_catch_up(*, granularity: str, now: datetime | None = None) -> int:
    """Roll every bucket from the watermark (or the first record) up to now, one per transaction.

    After downtime this walks the missed buckets; otherwise it re-rolls the last few. Each bucket
    is its own transaction, so a crash mid-way loses nothing but the bucket in hand.
    """
    step = STEP[Granularity(granularity)]
    now = now or timezone.now()
    current = bucket_floor(now, granularity)
    newest = latest_record_id()  # before anything is read: a record written meanwhile is next run's
    still_open = open_record_ids()  # likewise: one finished meanwhile is rolled again next run
    mark = RollupWatermark.objects.filter(granularity=granularity).first()
    late: set[datetime] = set()
    if mark is not None:
        start = min(mark.done_until, current - step * (REROLL[Granularity(granularity)] - 1))
        # Records written since the last run into windows before those rolled again (none
        # known before the first run that noted the newest record).
        late = (
            set()
            if not mark.seen_record_id
            else {
                bucket_floor(at, granularity)
                for at in late_record_times(mark.seen_record_id, start)
            }
        )
        # Streams open at the last run: finished since, each changed a window that may not be
        # rolled again, and its record kept the id it had (the late records above miss it).
        late |= {bucket_floor(at, granularity) for at in record_times(mark.open_record_ids)}
    else:
        earliest = first_record_at()
        if earliest is None:
            return 0
        start = bucket_floor(earliest, granularity)
    written = 0
    for bucket in sorted(late):
        written += rollup_window(granularity=granularity, start=bucket, end=bucket + step)
    bucket = start
    while bucket <= current:
        written += rollup_window(granularity=granularity, start=bucket, end=bucket + step)
        bucket += step
        # Progress is kept bucket by bucket; the current bucket is partial, never marked done.
        RollupWatermark.objects.update_or_create(
            granularity=granularity, defaults={"done_until": min(bucket, current)}
        )
    RollupWatermark.objects.filter(granularity=granularity).update(
        seen_record_id=newest, open_record_ids=still_open
    )
    return written

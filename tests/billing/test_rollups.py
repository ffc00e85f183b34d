from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from audit.models import AuditStatus
from billing.models import Granularity, RollupWatermark, UsageRollup
from billing.rollups import rollup_catch_up, rollup_window
from tests.billing.support import make_ledger, month_of_traffic, record

pytestmark = [pytest.mark.django_db]

START = datetime(2026, 10, 1, tzinfo=UTC)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def test_daily_and_hourly_rollups_agree_with_the_records_to_the_cent():
    ledger = make_ledger()
    records = [
        r for r in month_of_traffic(ledger, START, days=31) if r.tenant_id == ledger.tenant.id
    ]
    now = START + timedelta(days=31, hours=1)

    rollup_catch_up(granularity=Granularity.HOUR, now=now)
    rollup_catch_up(granularity=Granularity.DAY, now=now)

    expected: dict[int, Decimal] = defaultdict(Decimal)
    for r in records:
        expected[r.team_id] += r.cost_usd
    for granularity in (Granularity.HOUR, Granularity.DAY):
        rows = UsageRollup.objects.filter(granularity=granularity, tenant=ledger.tenant)
        by_team = dict(rows.values_list("team_id").annotate(total=Sum("cost_usd")))
        assert {t: _cents(v) for t, v in by_team.items()} == {
            t: _cents(v) for t, v in expected.items()
        }
        assert rows.aggregate(n=Sum("requests"))["n"] == len(records)
        errors = sum(r.status == AuditStatus.UPSTREAM_ERROR for r in records)
        assert rows.aggregate(n=Sum("errors"))["n"] == errors
        assert rows.aggregate(n=Sum("cache_hits"))["n"] == sum(r.cached_tokens > 0 for r in records)


def test_rerunning_a_window_gives_the_same_rows():
    ledger = make_ledger()
    month_of_traffic(ledger, START, days=2)
    window = {"granularity": Granularity.DAY, "start": START, "end": START + timedelta(days=2)}

    mine = UsageRollup.objects.filter(tenant=ledger.tenant)
    rollup_window(**window)
    first = sorted(mine.values_list("team_id", "end_user", "model", "cost_usd"))
    rollup_window(**window)
    again = sorted(mine.values_list("team_id", "end_user", "model", "cost_usd"))

    assert first == again
    assert len(first) > 10


def test_latency_percentiles_are_per_group():
    ledger = make_ledger()
    key = ledger.keys[0]
    from audit.models import AuditRecord

    AuditRecord.objects.bulk_create(
        record(key, START + timedelta(minutes=i), cost=Decimal(0), latency_ms=float(i + 1))
        for i in range(100)
    )
    rollup_window(granularity=Granularity.HOUR, start=START, end=START + timedelta(hours=2))

    row = UsageRollup.objects.get(granularity=Granularity.HOUR, bucket_start=START)
    assert row.requests == 60
    assert row.latency_p50_ms == pytest.approx(30.5)
    assert row.latency_p99_ms == pytest.approx(59.41)


def test_it_catches_up_after_downtime_and_picks_up_late_streams():
    ledger = make_ledger()
    key = ledger.keys[0]
    from audit.models import AuditRecord

    AuditRecord.objects.bulk_create([record(key, START, cost=Decimal("1.00"))])
    rollup_catch_up(granularity=Granularity.HOUR, now=START + timedelta(minutes=30))
    assert RollupWatermark.objects.get(granularity="hour").done_until == START

    # Ten hours pass without a run; records landed meanwhile, one stream still open.
    later = [record(key, START + timedelta(hours=h), cost=Decimal("2.00")) for h in (2, 5, 9)]
    stream = record(key, START + timedelta(hours=9, minutes=5), cost=Decimal(0))
    stream.status = AuditStatus.IN_PROGRESS
    AuditRecord.objects.bulk_create([*later, stream])
    rollup_catch_up(granularity=Granularity.HOUR, now=START + timedelta(hours=10, minutes=1))

    hours = dict(
        UsageRollup.objects.filter(tenant=ledger.tenant).values_list("bucket_start", "cost_usd")
    )
    assert {b - START: c for b, c in hours.items()} == {
        timedelta(0): Decimal("1.00"),
        timedelta(hours=2): Decimal("2.00"),
        timedelta(hours=5): Decimal("2.00"),
        timedelta(hours=9): Decimal("2.00"),
    }
    assert RollupWatermark.objects.get(granularity="hour").done_until == START + timedelta(hours=10)

    # The stream finishes; the next run (re-rolling the last hours) counts it.
    AuditRecord.objects.filter(pk=AuditRecord.objects.get(request_id=stream.request_id).pk).update(
        status=AuditStatus.SUCCESS, cost_usd=Decimal("0.50")
    )
    rollup_catch_up(granularity=Granularity.HOUR, now=START + timedelta(hours=10, minutes=20))
    row = UsageRollup.objects.get(bucket_start=START + timedelta(hours=9))
    assert (row.requests, row.cost_usd) == (2, Decimal("2.50"))


def _day_cost(tenant_id: int, day: datetime) -> Decimal:
    rows = UsageRollup.objects.filter(
        granularity=Granularity.DAY, tenant_id=tenant_id, bucket_start=day
    )
    return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)


def test_a_record_written_late_into_a_window_rolled_long_ago_reaches_finance():
    from audit.models import AuditRecord

    ledger = make_ledger("late-record")
    key, day = ledger.keys[0], datetime(2026, 6, 2, tzinfo=UTC)
    AuditRecord.objects.bulk_create(
        [record(key, day + timedelta(hours=10, minutes=i), cost=Decimal(1)) for i in range(3)]
    )
    now = datetime(2026, 6, 5, 12, tzinfo=UTC)
    rollup_catch_up(granularity=Granularity.DAY, now=now)
    assert _day_cost(ledger.tenant.pk, day) == Decimal(3)

    # A worker's journal recovered after downtime: a call of June 2 recorded on June 5.
    late = record(key, day + timedelta(hours=11), cost=Decimal(5), status=AuditStatus.INTERRUPTED)
    AuditRecord.objects.bulk_create([late])
    rollup_catch_up(granularity=Granularity.DAY, now=now + timedelta(minutes=15))

    assert _day_cost(ledger.tenant.pk, day) == Decimal(8)


def test_a_stream_finished_after_its_window_stopped_being_rolled_again_reaches_finance():
    from audit.models import AuditRecord

    ledger = make_ledger("late-stream")
    key, day = ledger.keys[0], datetime(2026, 7, 2, tzinfo=UTC)
    done = record(key, day + timedelta(hours=9), cost=Decimal(1))
    stream = record(key, day + timedelta(hours=10), cost=Decimal(0), status=AuditStatus.IN_PROGRESS)
    AuditRecord.objects.bulk_create([done, stream])
    now = datetime(2026, 7, 5, 12, tzinfo=UTC)
    rollup_catch_up(granularity=Granularity.DAY, now=now)
    assert _day_cost(ledger.tenant.pk, day) == Decimal(1)

    # Its completion written days late (owed while the database was out of the gateway's reach):
    # the record keeps the id it was given when the stream started.
    AuditRecord.objects.filter(request_id=stream.request_id).update(
        status=AuditStatus.SUCCESS, cost_usd=Decimal(4)
    )
    rollup_catch_up(granularity=Granularity.DAY, now=now + timedelta(minutes=15))

    assert _day_cost(ledger.tenant.pk, day) == Decimal(5)


def test_a_short_retention_never_takes_cost_out_of_the_days_already_rolled():
    from audit.models import AuditPolicy, AuditRecord
    from audit.sealer import audit_seal_pending
    from audit.services import audit_retention_purge

    ledger = make_ledger("short-retention")
    key, day = ledger.keys[0], datetime(2026, 5, 10, tzinfo=UTC)
    AuditPolicy.objects.create(tenant=ledger.tenant, content_mode="full", retention_days=1)
    AuditRecord.objects.bulk_create(
        [record(key, day + timedelta(hours=h), cost=Decimal(1)) for h in range(1, 21)]
    )
    audit_seal_pending()
    now = datetime(2026, 5, 11, 22, tzinfo=UTC)
    rollup_catch_up(granularity=Granularity.DAY, now=now)
    assert _day_cost(ledger.tenant.pk, day) == Decimal(20)

    audit_retention_purge(now=now)  # the day's records go: retention is one day
    rollup_catch_up(granularity=Granularity.DAY, now=now + timedelta(minutes=15))

    assert not AuditRecord.objects.filter(tenant=ledger.tenant).exists()
    assert _day_cost(ledger.tenant.pk, day) == Decimal(20)  # what finance showed, still

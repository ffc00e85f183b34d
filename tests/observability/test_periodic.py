"""The scheduler without Celery (`manage.py run_periodic`) and the commands that run its jobs now:
a fresh demo gets its cost rollups and a signed checkpoint without waiting for beat."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from celery.schedules import schedule
from django.core.management import call_command

from audit.models import AuditCheckpoint, AuditRecord
from audit.observability.periodic import Job, jobs_from_settings, run_due
from billing.models import Granularity, UsageRollup
from tests.billing.support import make_ledger, record

pytestmark = [pytest.mark.django_db]


def _spend() -> Any:
    ledger = make_ledger("periodic")
    at = datetime.now(UTC) - timedelta(minutes=5)
    AuditRecord.objects.bulk_create(
        [record(ledger.keys[0], at, cost=Decimal("0.25"), user="ana") for _ in range(2)]
    )
    return ledger


def test_billing_rollup_rolls_the_records_up_now() -> None:
    ledger = _spend()
    out = io.StringIO()

    call_command("billing_rollup", stdout=out)

    day = UsageRollup.objects.filter(tenant=ledger.tenant, granularity=Granularity.DAY)
    assert sum(r.cost_usd for r in day) == Decimal("0.5")
    assert "day rollups" in out.getvalue()


def test_run_periodic_once_rolls_up_and_seals_at_start() -> None:
    ledger = _spend()

    call_command("run_periodic", once=True, stdout=io.StringIO())

    assert UsageRollup.objects.filter(tenant=ledger.tenant, granularity=Granularity.HOUR).exists()
    assert AuditCheckpoint.objects.filter(tenant=ledger.tenant).exists()


def test_every_beat_job_is_scheduled_and_only_intervals_run_at_start() -> None:
    jobs = {job.name: job for job in jobs_from_settings()}

    assert {"rollup-hourly", "rollup-daily", "audit-seal", "alerts-evaluate"} <= set(jobs)
    assert jobs["rollup-hourly"].due()[0] and jobs["audit-seal"].due()[0]
    assert not jobs["daily-digest"].due()[0]  # a crontab waits for its time


def test_a_failing_job_does_not_stop_the_others() -> None:
    epoch = datetime.fromtimestamp(0, tz=UTC)
    jobs = [
        Job("broken", "x.broken", schedule(timedelta(seconds=30)), epoch),
        Job("fine", "x.fine", schedule(timedelta(seconds=20)), epoch),
    ]
    ran = []

    def run(task: str) -> None:
        ran.append(task)
        if task == "x.broken":
            raise RuntimeError("boom")

    wait = run_due(jobs, run)

    assert ran == ["x.broken", "x.fine"]
    assert 0 < wait <= 20  # the next turn of the soonest job
    assert run_due(jobs, run) > 0 and ran == ["x.broken", "x.fine"]  # not due again yet

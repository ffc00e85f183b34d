"""Tier 1 alerts: raised once while a condition lasts, resolved when it ends, delivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from audit.models import AuditRecord, AuditStatus
from observability.alerts.services import alerts_evaluate
from observability.config import AlertSettings
from observability.models import Alert, AlertStatus
from quotas import services as quotas
from quotas.models import BudgetAlert
from tests.billing.support import make_ledger, record
from tests.observability.receiver import webhook_receiver

pytestmark = [pytest.mark.django_db]

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def test_a_limit_rejection_alerts_once_and_resolves_when_they_stop():
    ledger = make_ledger("limits")
    key = ledger.keys[1]
    AuditRecord.objects.bulk_create(
        record(
            key,
            NOW - timedelta(minutes=m),
            cost=Decimal(0),
            status=AuditStatus.REJECTED,
            error_type="rate_limit_exceeded",
        )
        for m in (1, 2, 3)
    )
    with webhook_receiver() as hook:
        config = AlertSettings(webhook_urls=(hook.url,))
        alerts_evaluate(now=NOW, config=config)
        alerts_evaluate(now=NOW + timedelta(minutes=1), config=config)  # still there: no repeat
        alerts_evaluate(now=NOW + timedelta(minutes=10), config=config)  # gone: resolved

        subject = f"team:{key.team_id}"
        assert hook.events() == [
            ("alert.firing", "limit_rejections", subject),
            ("alert.resolved", "limit_rejections", subject),
        ]
        assert hook.received[0]["context"]["codes"] == {"rate_limit_exceeded": 3}
        assert "support" in hook.received[0]["message"]
    alert = Alert.objects.get(rule="limit_rejections")
    assert alert.status == AlertStatus.RESOLVED
    assert [d["outcome"] for d in alert.deliveries] == ["http 204", "http 204"]


def test_gateway_p99_over_its_threshold_alerts():
    ledger = make_ledger("slow")
    AuditRecord.objects.bulk_create(
        record(ledger.keys[0], NOW - timedelta(seconds=5 * i + 1), cost=Decimal(0), latency_ms=ms)
        for i, ms in enumerate([200.0] * 25 + [45_000.0] * 2)
    )
    with webhook_receiver() as hook:
        outcome = alerts_evaluate(now=NOW, config=AlertSettings(webhook_urls=(hook.url,)))
        assert [(a.rule, a.subject) for a in outcome["opened"]] == [("latency_p99", "gateway")]
        assert hook.received[0]["context"]["requests"] == 27


def test_a_budget_early_warning_reaches_the_webhook_until_its_window_ends():
    ledger = make_ledger("budget")
    team = ledger.teams[2]
    budget = quotas.budget_set(
        tenant=ledger.tenant, scope="team", team=team, amount_usd=Decimal("100")
    )
    BudgetAlert.objects.create(
        budget=budget, window_start=datetime(2026, 3, 1, tzinfo=UTC), threshold_pct=80
    )
    with webhook_receiver() as hook:
        config = AlertSettings(webhook_urls=(hook.url,))
        alerts_evaluate(now=NOW, config=config)
        alerts_evaluate(now=datetime(2026, 4, 1, 0, 1, tzinfo=UTC), config=config)
        assert [e[0] for e in hook.events("budget_threshold")] == [
            "alert.firing",
            "alert.resolved",
        ]
        assert "80% of $100" in hook.received[0]["message"]


def test_an_unreachable_webhook_is_recorded_and_does_not_stop_the_alert():
    ledger = make_ledger("deaf")
    AuditRecord.objects.bulk_create(
        [
            record(
                ledger.keys[0],
                NOW - timedelta(minutes=1),
                cost=Decimal(0),
                status=AuditStatus.REJECTED,
                error_type="budget_exceeded",
            )
        ]
    )
    config = AlertSettings(webhook_urls=("http://127.0.0.1:9/unreachable",))
    (alert,) = alerts_evaluate(now=NOW, config=config)["opened"]
    assert alert.status == AlertStatus.FIRING
    assert alert.deliveries[0]["outcome"].startswith("failed")

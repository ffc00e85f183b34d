"""Tier 1 alerts: raised once while a condition lasts, resolved when it ends, delivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from audit.models import AuditRecord, AuditStatus
from audit.observability.alert_settings import AlertSettings
from audit.observability.alerts.services import alerts_evaluate
from audit.observability.models import Alert, AlertStatus
from tenants.quotas import services as quotas
from tenants.quotas.core.windows import window_at
from tenants.quotas.models import BudgetAlert
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

        # Only this ledger's team: other tests' committed rejections may alert for theirs.
        subject = f"team:{key.team_id}"
        ours = [i for i, event in enumerate(hook.events()) if event[2] == subject]
        assert [hook.events()[i] for i in ours] == [
            ("alert.firing", "limit_rejections", subject),
            ("alert.resolved", "limit_rejections", subject),
        ]
        assert hook.received[ours[0]]["context"]["codes"] == {"rate_limit_exceeded": 3}
        assert "support" in hook.received[ours[0]]["message"]
    alert = Alert.objects.get(rule="limit_rejections", subject=subject)
    assert alert.status == AlertStatus.RESOLVED
    assert [d["outcome"] for d in alert.deliveries] == ["http 204", "http 204"]


def test_requests_served_with_their_limits_unchecked_alert_for_their_tenant():
    ledger = make_ledger("unchecked")
    key = ledger.keys[1]
    served = [record(key, NOW - timedelta(minutes=m), cost=Decimal(0)) for m in (1, 2)]
    for row in served:
        row.quota = {"store": "unavailable: served unchecked by policy"}
    AuditRecord.objects.bulk_create(served)
    with webhook_receiver() as hook:
        alerts_evaluate(now=NOW, config=AlertSettings(webhook_urls=(hook.url,)))

        assert ("alert.firing", "limits_unchecked", f"tenant:{key.tenant_id}") in hook.events()
        fired = next(e for e in hook.received if e["rule"] == "limits_unchecked")
        assert fired["context"]["requests"] == 2


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
        ours = [
            e for e in hook.events("budget_threshold") if e[2].startswith(f"budget:{budget.pk}:")
        ]
        assert [e[0] for e in ours] == ["alert.firing", "alert.resolved"]
        assert "80% of $100" in hook.received[0]["message"]


def test_each_budget_threshold_notifies_once_as_it_is_reached():
    ledger = make_ledger("budget-steps")
    budget = quotas.budget_set(
        tenant=ledger.tenant, scope="team", team=ledger.teams[0], amount_usd=Decimal("100")
    )
    march = datetime(2026, 3, 1, tzinfo=UTC)
    with webhook_receiver() as hook:
        config = AlertSettings(webhook_urls=(hook.url,))
        BudgetAlert.objects.create(budget=budget, window_start=march, threshold_pct=50)
        alerts_evaluate(now=NOW, config=config)
        BudgetAlert.objects.create(budget=budget, window_start=march, threshold_pct=80)
        alerts_evaluate(now=NOW + timedelta(minutes=1), config=config)
        alerts_evaluate(now=NOW + timedelta(minutes=2), config=config)  # nothing new
        firing = [m for m in hook.received if m.get("event") == "alert.firing"]
        assert [("50%" in m["message"], "80%" in m["message"]) for m in firing] == [
            (True, False),
            (False, True),
        ]


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


def test_daily_and_weekly_digests_carry_tier_2_and_3_signals():
    from audit.observability.alerts.digests import daily_digest, digest_deliver, weekly_digest
    from billing.models import Granularity
    from billing.rollups import rollup_window

    ledger = make_ledger("digest")
    day = datetime(2026, 3, 3, tzinfo=UTC)
    AuditRecord.objects.bulk_create(
        [
            record(ledger.keys[0], day + timedelta(hours=1), cost=Decimal("2"), feature="chat"),
            record(ledger.keys[0], day + timedelta(hours=2), cost=Decimal("1"), cached_tokens=10),
            record(
                ledger.keys[1],
                day + timedelta(hours=3),
                cost=Decimal("0.5"),
                guardrail_findings=[{"check": "pii", "entity": "EMAIL_ADDRESS"}],
            ),
        ]
    )
    rollup_window(granularity=Granularity.DAY, start=day, end=day + timedelta(days=1))

    daily = daily_digest(today=day.date() + timedelta(days=1))
    weekly = weekly_digest(today=day.date() + timedelta(days=1))

    mine = {row["team_id"]: row["cost_usd"] for row in daily["cost_by_team"]}
    assert mine[ledger.keys[0].team_id] == "3.00"
    (gpt,) = [m for m in daily["models"] if m["model"] == "gpt-4o"]
    assert gpt["cache_hit_rate"] >= 0.3333
    assert weekly["compliance"]["pii_findings"]["digest-co"] == 1
    assert {
        "tenant": "digest-co",
        "team": "digest-research",
        "feature": "chat",
        "cost_usd": "2.00",
        "requests": 1,
    } in weekly["cost_by_team_and_feature"]
    with webhook_receiver() as hook:
        assert digest_deliver(daily, AlertSettings(webhook_urls=(hook.url,))) == ["http 204"]
        assert hook.received[0]["event"] == "digest.daily"


@pytest.mark.parametrize(
    ("zone", "inside"),
    [
        # April in Berlin starts 2026-03-31 22:00 UTC: a month added to that is not a date.
        ("Europe/Berlin", datetime(2026, 4, 29, 12, tzinfo=UTC)),
        # March in Tokyo ends 2026-03-31 15:00 UTC, not a month after its UTC start (03-28).
        ("Asia/Tokyo", datetime(2026, 3, 30, 12, tzinfo=UTC)),
    ],
)
def test_a_budget_warning_east_of_utc_fires_for_its_whole_window_and_then_resolves(
    zone: str, inside: datetime
) -> None:
    ledger = make_ledger(f"budget-{zone.split('/')[1].lower()}")
    budget = quotas.budget_set(
        tenant=ledger.tenant,
        scope="team",
        team=ledger.teams[0],
        amount_usd=Decimal("100"),
        timezone=zone,
    )
    window = window_at("month", zone, inside)
    BudgetAlert.objects.create(budget=budget, window_start=window.start, threshold_pct=80)
    config = AlertSettings(webhook_urls=())

    opened = alerts_evaluate(now=window.start + timedelta(hours=1), config=config)["opened"]
    still = alerts_evaluate(now=inside, config=config)["resolved"]
    after = alerts_evaluate(now=window.end + timedelta(minutes=1), config=config)["resolved"]

    assert [a.rule for a in opened] == ["budget_threshold"]
    assert [a for a in still if a.rule == "budget_threshold"] == []
    assert [a.rule for a in after if a.rule == "budget_threshold"] == ["budget_threshold"]


def test_a_detector_that_fails_stops_only_itself_and_resolves_nothing(monkeypatch) -> None:
    from audit.observability.alerts import detectors

    ledger = make_ledger("failing-detector")
    budget = quotas.budget_set(
        tenant=ledger.tenant, scope="team", team=ledger.teams[0], amount_usd=Decimal("100")
    )
    BudgetAlert.objects.create(
        budget=budget, window_start=datetime(2026, 3, 1, tzinfo=UTC), threshold_pct=80
    )
    config = AlertSettings(webhook_urls=())
    assert [a.rule for a in alerts_evaluate(now=NOW, config=config)["opened"]] == [
        "budget_threshold"
    ]

    def broken(now: datetime, config: AlertSettings) -> list:
        raise ValueError("a row this detector cannot read")

    monkeypatch.setattr(
        detectors,
        "DETECTORS",
        tuple(
            (broken, rule) if rule == "budget_threshold" else (d, rule)
            for d, rule in detectors.DETECTORS
        ),
    )
    later = alerts_evaluate(now=NOW + timedelta(minutes=1), config=config)

    assert later["resolved"] == []  # not resolved because its detector failed
    assert Alert.objects.filter(rule="budget_threshold", status=AlertStatus.FIRING).count() == 1

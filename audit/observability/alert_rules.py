"""Alert rules set in the console over the environment's thresholds (GATEWAY_ALERT_*).

Each rule kind maps onto two fields of `AlertSettings`: its threshold and the least volume before
it may fire. A disabled rule's minimum becomes infinite, so its detector never fires.
"""

from __future__ import annotations

import dataclasses
import math

from django.db import transaction

from audit.activity.services import Actor, activity_record
from audit.observability.alert_settings import AlertSettings
from audit.observability.models import AlertRule, AlertRuleKind
from audit.observability.selectors import alert_rules_all

FIELDS: dict[str, tuple[str, str]] = {
    AlertRuleKind.PROVIDER_ERROR_RATE: ("error_rate", "error_min_attempts"),
    AlertRuleKind.COST_SPIKE: ("cost_spike_factor", "cost_spike_min_usd"),
    AlertRuleKind.PII_SPIKE: ("pii_spike_factor", "pii_min_findings"),
    AlertRuleKind.LATENCY_P99: ("latency_p99_ms", "latency_min_requests"),
}


class AlertRuleConflict(Exception):
    """Create of a rule that exists, or update of one that does not."""


def defaults_of(base: AlertSettings, rule: str) -> tuple[float, float]:
    threshold, minimum = FIELDS[rule]
    return float(getattr(base, threshold)), float(getattr(base, minimum))


def alert_settings_effective(base: AlertSettings) -> AlertSettings:
    changes: dict[str, float] = {}
    for row in alert_rules_all():
        threshold, minimum = FIELDS[row.rule]
        changes[threshold] = row.threshold
        changes[minimum] = row.minimum if row.enabled else math.inf
    return dataclasses.replace(base, **changes) if changes else base  # type: ignore[arg-type]


def alert_rule_save(
    *, rule: str, enabled: bool, threshold: float, minimum: float, creating: bool, actor: Actor
) -> AlertRule:
    """Create (`creating`) or update one rule; `AlertRuleConflict` and nothing changed if the
    rule exists (create) or does not (update)."""
    with transaction.atomic():
        row = AlertRule.objects.select_for_update().filter(rule=rule).first()
        if (row is not None) == creating:
            state = "already has its own threshold" if creating else "has no own threshold yet"
            raise AlertRuleConflict(f"{AlertRuleKind(rule).label} {state}")
        row = row or AlertRule(rule=rule)
        row.enabled, row.threshold, row.minimum = enabled, threshold, minimum
        row.save()
        activity_record(
            actor=actor,
            action="alert_rule.create" if creating else "alert_rule.update",
            target=row,
            tenant_id=None,
            details={"rule": rule, "enabled": enabled, "threshold": threshold, "minimum": minimum},
        )
    return row

"""Open, refresh and resolve alerts from the conditions seen now; deliver each change once."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from audit.observability.alert_rules import alert_settings_effective
from audit.observability.alert_settings import AlertSettings
from audit.observability.alerts.detectors import Condition, current_conditions
from audit.observability.models import Alert, AlertStatus

logger = logging.getLogger("gateway.alerts")
_WEBHOOK_TIMEOUT_S = 5.0


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    return {
        "event": event,  # "alert.firing" or "alert.resolved"
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "tier": alert.tier,
        "tenant_id": alert.tenant_id,
        "message": alert.message,
        "context": alert.context,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def _deliver(alert: Alert, event: str, config: AlertSettings) -> None:
    """Log, then post to every webhook (and mail); failures are recorded, never raised."""
    log = logger.warning if event == "alert.firing" else logger.info
    log("%s %s %s: %s", event, alert.rule, alert.subject, alert.message)
    payload = alert_payload(alert, event)
    outcomes = []
    for url in config.webhook_urls:
        try:
            response = httpx.post(url, json=payload, timeout=_WEBHOOK_TIMEOUT_S)
            outcome = f"http {response.status_code}"
        except httpx.HTTPError as exc:
            outcome = f"failed: {type(exc).__name__}"
            logger.error("alert webhook %s failed: %s", url, exc)
        outcomes.append({"channel": "webhook", "to": url, "event": event, "outcome": outcome})
    if config.emails:
        sent = send_mail(
            f"[gateway] {event.split('.')[1]}: {alert.message}"[:200],
            f"{alert.message}\n\n{payload}",
            None,
            list(config.emails),
            fail_silently=True,
        )
        outcomes.append(
            {
                "channel": "email",
                "to": ",".join(config.emails),
                "event": event,
                "outcome": f"sent to {sent}",
            }
        )
    if outcomes:
        Alert.objects.filter(pk=alert.pk).update(deliveries=alert.deliveries + outcomes)
        alert.deliveries = alert.deliveries + outcomes


def alerts_evaluate(
    *, now: datetime | None = None, config: AlertSettings | None = None
) -> dict[str, list[Alert]]:
    """One evaluation: firing conditions open (or refresh) their alert, vanished ones resolve."""
    now = now or timezone.now()
    config = config or alert_settings_effective(settings.GATEWAY_ALERTS)
    conditions, failed = current_conditions(now, config)
    seen: dict[tuple[str, str], Condition] = {(c.rule, c.subject): c for c in conditions}
    opened, resolved = [], []
    with transaction.atomic():
        firing = {
            (a.rule, a.subject): a
            for a in Alert.objects.select_for_update().filter(status=AlertStatus.FIRING)
        }
        for key, condition in seen.items():
            if key in firing:
                Alert.objects.filter(pk=firing[key].pk).update(
                    last_seen_at=now, context=condition.context, message=condition.message[:500]
                )
                continue
            opened.append(
                Alert.objects.create(
                    rule=condition.rule,
                    subject=condition.subject,
                    tenant_id=condition.tenant_id,
                    status=AlertStatus.FIRING,
                    message=condition.message[:500],
                    context=condition.context,
                    opened_at=now,
                    last_seen_at=now,
                )
            )
        for key, alert in firing.items():
            if key not in seen and alert.rule not in failed:
                alert.status, alert.resolved_at = AlertStatus.RESOLVED, now
                alert.save(update_fields=["status", "resolved_at"])
                resolved.append(alert)
    # Deliver after commit: a webhook is slow and must not hold the rows locked.
    for alert in opened:
        _deliver(alert, "alert.firing", config)
    for alert in resolved:
        _deliver(alert, "alert.resolved", config)
    return {"opened": opened, "resolved": resolved}

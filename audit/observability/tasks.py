"""Celery tasks for alerts (thin: the work is in audit/observability/alerts/services.py)."""

from celery import shared_task
from django.utils import timezone

from audit.observability.alerts.digests import daily_digest, digest_deliver, weekly_digest
from audit.observability.alerts.services import alerts_evaluate


@shared_task(name="observability.alerts_evaluate")  # type: ignore[untyped-decorator]  # celery ships no types
def evaluate_alerts() -> dict[str, int]:
    outcome = alerts_evaluate()
    return {change: len(alerts) for change, alerts in outcome.items()}


@shared_task(name="observability.daily_digest")  # type: ignore[untyped-decorator]  # celery ships no types
def send_daily_digest() -> list[str]:
    return digest_deliver(daily_digest(today=timezone.now().date()))


@shared_task(name="observability.weekly_digest")  # type: ignore[untyped-decorator]  # celery ships no types
def send_weekly_digest() -> list[str]:
    return digest_deliver(weekly_digest(today=timezone.now().date()))

"""Celery tasks for alerts (thin: the work is in observability/alerts/services.py)."""

from celery import shared_task

from observability.alerts.services import alerts_evaluate


@shared_task(name="observability.alerts_evaluate")  # type: ignore[untyped-decorator]  # celery ships no types
def evaluate_alerts() -> dict[str, int]:
    outcome = alerts_evaluate()
    return {change: len(alerts) for change, alerts in outcome.items()}

"""Periodic purge of expired stored responses (Celery beat, CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from routing.responses_state.services import conversations_purge, responses_purge


@shared_task(name="responses_state.purge", ignore_result=True)  # type: ignore[untyped-decorator]
def purge() -> int:
    """Stored responses and conversations past their tenant's retention."""
    return responses_purge() + conversations_purge()

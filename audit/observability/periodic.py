"""The periodic work of Celery beat (CELERY_BEAT_SCHEDULE) run in one process, without a broker.

For the embedded default (SQLite, no Redis), where there is no beat: `manage.py run_periodic`
runs each task of the schedule when it is due, in this process, one at a time. Interval tasks run
once at start (so a fresh demo has rollups and a signed checkpoint at once), crontab ones at their
time. A task that fails is logged and tried again at its next turn; the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery.schedules import crontab, maybe_schedule
from celery.schedules import schedule as Schedule
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    task: str
    schedule: Schedule
    last_run_at: datetime

    def due(self) -> tuple[bool, float]:
        is_due, next_seconds = self.schedule.is_due(self.last_run_at)
        return bool(is_due), float(next_seconds)


def jobs_from_settings(now: datetime | None = None) -> list[Job]:
    now = now or timezone.now()
    jobs = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        schedule = maybe_schedule(entry["schedule"])
        # Intervals are due at once; a crontab waits for its next time.
        first = now if isinstance(schedule, crontab) else datetime.fromtimestamp(0, tz=now.tzinfo)
        jobs.append(Job(name, str(entry["task"]), schedule, first))
    return jobs


def run_due(jobs: list[Job], run: Callable[[str], Any]) -> float:
    """Run every due job (in schedule order); returns the seconds until the next one is due."""
    wait = 60.0
    for job in jobs:
        is_due, next_seconds = job.due()
        if is_due:
            job.last_run_at = timezone.now()
            try:
                result = run(job.task)
                logger.info("periodic %s: %s", job.name, result)
            except Exception:
                logger.exception("periodic %s failed; tried again at its next turn", job.name)
            is_due, next_seconds = job.due()
        wait = min(wait, next_seconds)
    return max(wait, 0.5)


def run_task(name: str) -> Any:
    """Run one registered Celery task here and now (no broker, no worker)."""
    from gateway_site.celery import app

    app.loader.import_default_modules()  # registers the apps' tasks
    return app.tasks[name].apply().get(disable_sync_subtasks=False)


def run_forever(*, once: bool = False) -> None:
    jobs = jobs_from_settings()
    while True:
        wait = run_due(jobs, run_task)
        if once:
            return
        close_old_connections()  # a long-lived process: no connection kept past its age or error
        time.sleep(wait)

"""`manage.py run_periodic`: the scheduler for installs without Celery (observability/periodic.py).

With Redis, run `celery -A gateway_site worker --beat` instead; `make run` picks one or the other.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.observability.periodic import run_forever


class Command(BaseCommand):
    help = (
        "Run the periodic jobs (rollups, audit sealing, alerts) in this process, as they fall due."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Run what is due now, then stop.")

    def handle(self, *args: Any, once: bool, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # one line per run is ours
        self.stdout.write("Periodic jobs: rollups, audit sealing, alerts (Ctrl-C stops).")
        run_forever(once=once)

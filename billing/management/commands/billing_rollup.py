"""`manage.py billing_rollup`: bring the hourly and daily cost rollups up to date now.

What Celery beat does every few minutes (billing.rollup_hourly, billing.rollup_daily), on demand:
after a demo's first requests, or with `--rebuild` to roll every bucket again from the first
record (after a change to what the rollups group by).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from billing.models import Granularity, RollupWatermark
from billing.rollups import rollup_catch_up


class Command(BaseCommand):
    help = "Roll the audit records up into hourly and daily cost rows now (the finance pages)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rebuild",
            action="store_true",
            help="Forget the watermarks: every bucket from the first record is rolled again.",
        )

    def handle(self, *args: Any, rebuild: bool, **options: Any) -> None:
        if rebuild:
            RollupWatermark.objects.all().delete()
        for granularity in (Granularity.HOUR, Granularity.DAY):
            written = rollup_catch_up(granularity=granularity)
            self.stdout.write(f"{granularity} rollups: {written} rows written")

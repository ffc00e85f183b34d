"""`manage.py audit_partitions ensure|seal|drop-expired|list`: the audit table's monthly partitions
(PostgreSQL; the beat task `audit.partitions` runs `ensure` and `seal` hourly)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.models import AuditMonth
from audit.partitions import (
    audit_months_drop_expired,
    audit_months_seal,
    audit_partitions_ensure,
    partitioned,
)


def parse_month(text: str) -> date:
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise CommandError(f"not a month: {text!r} (use e.g. 2026-11)") from None


class Command(BaseCommand):
    help = "Create the audit table's monthly partitions ahead, seal finished months, drop expired ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["ensure", "seal", "drop-expired", "list"])
        parser.add_argument("--ahead", type=int, help="months after this one (default: setting)")
        parser.add_argument("--since", help="ensure: also every month from this one (YYYY-MM)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not partitioned():
            raise CommandError(
                "the audit table is not partitioned here (SQLite keeps one plain table)"
            )
        action = options["action"]
        if action == "ensure":
            since = parse_month(options["since"]) if options["since"] else None
            created = audit_partitions_ensure(ahead=options["ahead"], since=since)
            months = ", ".join(f"{m:%Y-%m}" for m in created) or "none (all there)"
            self.stdout.write(f"created: {months}")
        elif action == "seal":
            sealed = audit_months_seal()
            self.stdout.write(f"sealed: {', '.join(str(m) for m in sealed) or 'none'}")
        elif action == "drop-expired":
            dropped = audit_months_drop_expired()
            self.stdout.write(f"dropped: {', '.join(str(m) for m in dropped) or 'none'}")
        for month in AuditMonth.objects.order_by("month") if action == "list" else []:
            archive = f", archived to {month.archive_url}" if month.archive_url else ""
            self.stdout.write(
                f"{month.month:%Y-%m} {month.state:8} {month.record_count} records "
                f"({month.table}){archive}"
            )

"""`manage.py audit_archive export|attach|detach`: archives of sealed audit months (docs/audit.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.archive import audit_month_archive, audit_month_attach, audit_month_detach
from audit.management.commands.audit_partitions import parse_month
from audit.models import AuditMonth
from audit.partitions import PartitionError


class Command(BaseCommand):
    help = (
        "Export a sealed audit month to a folder or s3://bucket/prefix (export), put an archived "
        "month back read-only (attach), or take it away again (detach)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["export", "attach", "detach"])
        parser.add_argument("--month", help="export, detach: the month (YYYY-MM)")
        parser.add_argument("--to", help="export: a folder or s3://bucket/prefix")
        parser.add_argument("--from", dest="source", help="attach: the archived month's URL")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "attach":
                if not options["source"]:
                    raise CommandError("attach needs --from <folder or s3://.../YYYY-MM>")
                attached = audit_month_attach(url=options["source"])
                self.stdout.write(
                    f"{attached.month:%Y-%m}: re-attached read-only ({attached.table})"
                )
                return
            if not options["month"]:
                raise CommandError(f"{action} needs --month YYYY-MM")
            month = AuditMonth.objects.filter(month=parse_month(options["month"])).first()
            if month is None:
                raise CommandError(f"no audit month {options['month']}")
            if action == "detach":
                audit_month_detach(month=month)
                self.stdout.write(f"{month.month:%Y-%m}: detached (it stays in its archive)")
                return
            if not options["to"]:
                raise CommandError("export needs --to <folder or s3://bucket/prefix>")
            result = audit_month_archive(month=month, destination=options["to"])
        except PartitionError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"{month.month:%Y-%m}: {result.records} records archived to {result.url} "
            f"(manifest SHA-256 {result.manifest_sha256})"
        )

"""`manage.py audit_verify [--tenant SLUG] [--since DATE] [--until DATE]`: check the audit chains.

`--archive PATH|s3://bucket/prefix/YYYY-MM` checks an archived month from its files alone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.archive import archive_verify
from audit.sealer import audit_seal_pending
from audit.verify import audit_chain_verify
from tenants.models import Tenant


def parse_moment(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = parse_datetime(text)
    if moment is None and (day := parse_date(text)) is not None:
        moment = datetime(day.year, day.month, day.day)
    if moment is None:
        raise CommandError(
            f"not a date or date-time: {text!r} (use e.g. 2026-11-23 or 2026-11-23T09:00)"
        )
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = "Verify each tenant's audit hash chain (or one tenant's, or a date range) and name the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")
        parser.add_argument("--since", help="only records started at or after this date/time")
        parser.add_argument("--until", help="only records started before this date/time")
        parser.add_argument(
            "--archive", help="verify an archived month (a folder or s3://...) instead, offline"
        )
        parser.add_argument(
            "--no-seal", action="store_true", help="do not seal pending records first"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["archive"]:
            self._archive(options["archive"])
            return
        since, until = parse_moment(options["since"]), parse_moment(options["until"])
        tenants = Tenant.objects.order_by("slug")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"no tenant with slug {options['tenant']!r}")
        if not options["no_seal"]:
            audit_seal_pending()
        failed = []
        for tenant in tenants:
            report = audit_chain_verify(tenant_id=tenant.pk, since=since, until=until)
            if report.ok:
                self.stdout.write(
                    f"{tenant.slug}: OK, links #{report.first_seq}..#{report.last_seq} "
                    f"({report.checked} checked, {report.erased} erased, {report.purged} purged, "
                    f"{report.checkpoints} checkpoints)"
                )
                continue
            failed.append(tenant.slug)
            first = report.first_break
            assert first is not None
            self.stdout.write(f"{tenant.slug}: BROKEN at {first.describe()}")
            for other in report.breaks[1:10]:
                self.stdout.write(f"    also {other.describe()}")
        if failed:
            raise CommandError(f"audit chain broken for: {', '.join(failed)}")

    def _archive(self, url: str) -> None:
        report = archive_verify(url)
        if report.ok:
            self.stdout.write(
                f"{report.month}: OK, {report.records} records, {report.seals} links, "
                f"{report.checkpoints} checkpoints, {report.erased} erased ({url})"
            )
            return
        for problem in report.problems:
            self.stdout.write(f"{report.month or url}: BROKEN: {problem}")
        raise CommandError(f"archive {url} does not verify: {report.problems[0]}")

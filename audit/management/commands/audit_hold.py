"""Legal holds: `manage.py audit_hold list|place|release` (a hold stops the retention purge)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.activity.services import Actor
from audit.management.commands.audit_policy import tenant_by_slug
from audit.management.commands.audit_verify import parse_moment
from audit.models import LegalHold
from audit.services import AuditError, legal_hold_place, legal_hold_release

ACTOR = Actor("system", "manage.py audit_hold")


class Command(BaseCommand):
    help = "List, place or release legal holds on a tenant's audit records."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "place", "release"])
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--end-user", default="", help="hold only this end user's records")
        parser.add_argument("--since", help="hold only records started at or after this date")
        parser.add_argument("--until", help="hold only records started before this date")
        parser.add_argument("--reason", default="", help="the matter the hold is for")
        parser.add_argument("--id", type=int, help="the hold to release")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["tenant"])
        if options["action"] == "place":
            try:
                hold = legal_hold_place(
                    tenant=tenant,
                    reason=options["reason"],
                    actor=ACTOR,
                    end_user=options["end_user"],
                    starts_at=parse_moment(options["since"]),
                    ends_at=parse_moment(options["until"]),
                )
            except AuditError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"placed hold {hold.pk}")
        elif options["action"] == "release":
            found = LegalHold.objects.filter(tenant=tenant, pk=options["id"]).first()
            if found is None or found.released_at is not None:
                raise CommandError(f"no active hold {options['id']} on {tenant.slug}")
            legal_hold_release(hold=found, actor=ACTOR)
            self.stdout.write(f"released hold {found.pk}")
        for hold in LegalHold.objects.filter(tenant=tenant, released_at__isnull=True):
            scope = ", ".join(
                part
                for part in (
                    f"end user {hold.end_user}" if hold.end_user else "",
                    f"from {hold.starts_at:%Y-%m-%d}" if hold.starts_at else "",
                    f"until {hold.ends_at:%Y-%m-%d}" if hold.ends_at else "",
                )
                if part
            )
            self.stdout.write(f"hold {hold.pk}: {scope or 'every record'} ({hold.reason})")

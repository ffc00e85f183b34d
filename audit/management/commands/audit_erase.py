"""`manage.py audit_erase --tenant SLUG --end-user ID --reason TEXT`: lawful erasure of content."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.activity.services import Actor
from audit.management.commands.audit_policy import tenant_by_slug
from audit.services import AuditError, audit_records_erase


class Command(BaseCommand):
    help = (
        "Erase the prompts and responses of one end user's audit records; who, when and cost "
        "stay, a tombstone records the erasure and the chain still verifies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--end-user", required=True)
        parser.add_argument("--reason", required=True, help="e.g. the erasure request's reference")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            erased = audit_records_erase(
                tenant=tenant_by_slug(options["tenant"]),
                end_user=options["end_user"],
                reason=options["reason"],
                actor=Actor("system", "manage.py audit_erase"),
            )
        except AuditError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"erased the content of {erased} records of {options['end_user']}")

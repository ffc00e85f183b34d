"""`manage.py responses_policy --tenant SLUG [--retention-days N]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.activity.services import Actor
from routing.responses_state.selectors import retention_days
from routing.responses_state.services import responses_retention_set
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Show or set how long a tenant's stored responses (Responses API `store`) are kept."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--retention-days", help="a positive number of days")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {options['tenant']!r}")
        if (raw := options["retention_days"]) is not None:
            if not raw.isdigit() or int(raw) < 1:
                raise CommandError("--retention-days takes a positive number of days")
            responses_retention_set(
                tenant=tenant,
                retention_days=int(raw),
                actor=Actor("system", "manage.py responses_policy"),
            )
        days = retention_days(tenant_id=tenant.id)
        self.stdout.write(f"{tenant.slug}: stored responses kept {days} days")

"""`manage.py audit_policy --tenant SLUG [--content-mode full|masked|metadata] [--retention-days N|none]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.activity.services import Actor
from audit.models import AuditPolicy, ContentMode
from audit.services import audit_policy_set
from tenants.models import Tenant


def tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"no tenant with slug {slug!r}")
    return tenant


class Command(BaseCommand):
    help = (
        "Show or set what a tenant's audit records keep of prompts and responses, and for how long."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--content-mode", choices=ContentMode.values)
        parser.add_argument("--retention-days", help="a number of days, or 'none' to keep forever")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["tenant"])
        current = AuditPolicy.objects.filter(tenant=tenant).first()
        mode = options["content_mode"] or (current.content_mode if current else ContentMode.FULL)
        days: int | None = current.retention_days if current else 7 * 365
        if (raw := options["retention_days"]) is not None:
            if raw.lower() == "none":
                days = None
            elif raw.isdigit() and int(raw) > 0:
                days = int(raw)
            else:
                raise CommandError("--retention-days takes a positive number of days or 'none'")
        if options["content_mode"] or raw is not None:
            audit_policy_set(
                tenant=tenant,
                content_mode=mode,
                retention_days=days,
                actor=Actor("system", "manage.py audit_policy"),
            )
        kept = "forever" if days is None else f"{days} days"
        self.stdout.write(f"{tenant.slug}: content {mode}, records kept {kept}")

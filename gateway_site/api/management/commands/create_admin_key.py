"""`manage.py create_admin_key --platform | --tenant <slug> --name …`: prints the key once."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.activity.services import Actor
from gateway_site.api.auth import KEY_ROLES
from gateway_site.api.services import admin_key_create
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create an admin key for the management API and print it (the only time it is shown)."

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--platform", action="store_true", help="may manage everything")
        scope.add_argument("--tenant", metavar="SLUG", help="may manage this tenant only")
        parser.add_argument("--name", required=True, help="what the key is for, e.g. 'terraform'")
        parser.add_argument(
            "--role",
            choices=KEY_ROLES,
            default="tenant_admin",
            help="a tenant key's role (compliance: audit search and export; finance: costs)",
        )
        parser.add_argument(
            "--created-by", default="", help="who asked for it (default: the OS user)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"no tenant '{options['tenant']}'")
        if tenant is None and options["role"] != "tenant_admin":
            raise CommandError("a platform key takes no role")
        created_by = options["created_by"] or f"{getpass.getuser()} (command line)"
        key, material = admin_key_create(
            name=options["name"],
            tenant=tenant,
            created_by=created_by,
            actor=Actor("system", f"create_admin_key by {created_by}"),
            role=options["role"],
        )
        scope = tenant.slug if tenant else "the platform"
        self.stderr.write(f"Admin key {key.prefix}… for {scope} created. Store it now:")
        # Alone on stdout so that scripts can capture it: KEY=$(manage.py create_admin_key …)
        self.stdout.write(material.plaintext)

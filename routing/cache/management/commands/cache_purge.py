from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.activity.services import Actor
from routing.cache.services import PurgeError, cache_purge
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Remove cached answers by tenant, route and/or registry prompt version, so the next "
        "matching requests go to a provider again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="tenant slug")
        parser.add_argument("--route", help="route alias")
        parser.add_argument("--prompt", help="'name' or 'name@version' (needs --tenant)")
        parser.add_argument("--all", action="store_true", help="every cached answer")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant '{options['tenant']}'.")
        try:
            purged = cache_purge(
                actor=Actor("config", "manage.py cache_purge"),
                tenant=tenant,
                route=options["route"],
                prompt=options["prompt"],
                everything=options["all"],
            )
        except PurgeError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Purged {purged.answers} cached answer(s) and {purged.questions} semantic "
                "entr(y/ies)."
            )
        )

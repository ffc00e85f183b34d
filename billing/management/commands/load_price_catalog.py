from typing import Any

from django.core.management.base import BaseCommand

from billing.services import CATALOG_PATH, catalog_load


class Command(BaseCommand):
    help = "Load the shipped price list (or another file in its format); idempotent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--file", default=str(CATALOG_PATH))

    def handle(self, *args: Any, **options: Any) -> None:
        from pathlib import Path

        loaded = catalog_load(path=Path(options["file"]))
        self.stdout.write(f"{loaded} price(s) added or changed")

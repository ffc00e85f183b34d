from typing import Any

from django.core.management.base import BaseCommand

from routing.responses_state.services import responses_purge


class Command(BaseCommand):
    help = "Delete stored responses (Responses API) past their tenant's retention."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"{responses_purge()} stored response(s) past retention deleted")

from typing import Any

from django.core.management.base import BaseCommand

from routing.responses_state.services import conversations_purge, responses_purge


class Command(BaseCommand):
    help = (
        "Delete stored responses and conversations (Responses API) past their tenant's retention."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"{responses_purge()} stored response(s) past retention deleted")
        self.stdout.write(f"{conversations_purge()} conversation(s) past retention deleted")

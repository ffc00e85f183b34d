"""`manage.py audit_seal`: chain pending records and sign checkpoints now (the beat task does it too)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand

from audit.sealer import audit_checkpoint_heads, audit_seal_pending


class Command(BaseCommand):
    help = (
        "Seal pending audit records into their tenants' chains and sign a checkpoint of each head."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        sealed = audit_seal_pending()
        checkpoints = audit_checkpoint_heads(min_interval=timedelta(0))
        self.stdout.write(f"sealed {sealed} records, signed {len(checkpoints)} checkpoints")

"""Write reviewers' quarantine labels as training rows (the corpus format, JSON lines)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from routing.guardrails.review_export import training_rows, write_jsonl
from routing.guardrails.selectors import labelled_reviews
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Export the labels reviewers gave quarantined requests as training rows "
        "(text, label, category, lang, source, split) for the classifier's next run."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", default="", help="one tenant's slug (default: all)")
        parser.add_argument("--out", default="-", help="a .jsonl file (default: stdout)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant_id = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"no tenant {options['tenant']!r}")
            tenant_id = tenant.id
        rows = training_rows(labelled_reviews(tenant_id=tenant_id))
        if options["out"] == "-":
            count = write_jsonl(rows, sys.stdout)
        else:
            with Path(options["out"]).open("w", encoding="utf-8") as out:
                count = write_jsonl(rows, out)
        self.stderr.write(f"{count} labelled request(s) exported")

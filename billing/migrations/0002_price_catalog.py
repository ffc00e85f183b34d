"""Load the shipped starting price list (billing/data/price_catalog.yaml) once."""

from decimal import Decimal
from pathlib import Path

import yaml
from django.db import migrations
from django.utils.dateparse import parse_datetime

CATALOG = Path(__file__).resolve().parent.parent / "data" / "price_catalog.yaml"


def load(apps, schema_editor):  # type: ignore[no-untyped-def]
    Price = apps.get_model("billing", "Price")
    data = yaml.safe_load(CATALOG.read_text())
    effective_from = parse_datetime(str(data["effective_from"]))
    for model, entry in data["models"].items():
        cached = entry.get("cached_input")
        Price.objects.get_or_create(
            deployment=None,
            model=model,
            effective_from=effective_from,
            defaults={
                "input_per_mtok": Decimal(str(entry["input"])),
                "output_per_mtok": Decimal(str(entry["output"])),
                "cached_input_per_mtok": None if cached is None else Decimal(str(cached)),
                "source": "catalog",
            },
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_prices_rollups")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]

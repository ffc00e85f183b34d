"""Which columns of a record are stored escaped (audit/storable.py); a stream's completion may
set it, since its answer may be the first part to need it."""

import importlib

from django.db import migrations, models

_guard = importlib.import_module("audit.migrations.0004_append_only_and_search").record_guard


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    guard = _guard(derived=("search_document",), also_completed=("stored_escaped",))
    schema_editor.execute(guard, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(_guard(derived=("search_document",)), params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0009_auditrecord_routing")]
    operations = [
        migrations.AddField(
            model_name="auditrecord",
            name="stored_escaped",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(forwards, backwards),
    ]

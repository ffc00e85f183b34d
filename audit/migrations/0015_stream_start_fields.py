"""A stream's start record is committed while its first deployment is being asked (ADR 0014):
its completion may also say which deployment answered, what it was sent, the attempts and why."""

import importlib

from django.db import migrations

_guard = importlib.import_module("audit.migrations.0004_append_only_and_search").record_guard

START_FIELDS = ("deployment_name", "provider_name", "request_body", "attempts", "routing")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    guard = _guard(
        derived=("search_document",), also_completed=("stored_escaped", *START_FIELDS)
    )
    schema_editor.execute(guard, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    guard = _guard(derived=("search_document",), also_completed=("stored_escaped",))
    schema_editor.execute(guard, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0014_monthly_partitions")]
    operations = [migrations.RunPython(forwards, backwards)]

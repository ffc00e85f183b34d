"""PostgreSQL: the searchable text as a stored tsvector column, indexed with GIN.

An expression index alone gave the planner no statistics: for a rare word it walked the time
index and recomputed the vector of every row of the month (30 s on 1,000,000 rows). A stored
column is computed once at insert and has statistics, so rare words go through the GIN index.
The column is not a model field: the ORM never reads or writes it (audit/selectors.py filters on
it with SQL), and it is not part of the chained content (it derives from the payload).
"""

import importlib

from django.db import migrations

# The guard must leave the generated column out: in a BEFORE trigger it is not computed yet.
_guard = importlib.import_module("audit.migrations.0004_append_only_and_search").record_guard

DOCUMENT = (
    "jsonb_to_tsvector('english'::regconfig, coalesce(request_body, '{}'::jsonb), '[\"string\"]')"
    " || jsonb_to_tsvector('english'::regconfig, coalesce(response_body, '{}'::jsonb), '[\"string\"]')"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in (
        "DROP INDEX IF EXISTS audit_text_search",
        f"ALTER TABLE audit_auditrecord ADD COLUMN search_document tsvector "
        f"GENERATED ALWAYS AS ({DOCUMENT}) STORED",
        "CREATE INDEX audit_search_document ON audit_auditrecord USING gin (search_document)",
        _guard(derived=("search_document",)),
    ):
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(_guard(), params=None)
    schema_editor.execute("DROP INDEX IF EXISTS audit_search_document", params=None)
    schema_editor.execute(
        "ALTER TABLE audit_auditrecord DROP COLUMN IF EXISTS search_document", params=None
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_export_append_only")]
    operations = [migrations.RunPython(forwards, backwards)]

"""PostgreSQL: the audit tables are append-only, and prompt/response text is full-text indexed.

See docs/adr/0006-audit-chain.md. SQLite (the embedded default) gets neither: its records are
still chained and verified, but nothing stops a direct UPDATE there.
"""

from django.db import migrations

# Fields a stream's completion may set (audit/entries.py COMPLETION_FIELDS) and the payload a
# lawful erasure may remove. A change to either list needs a migration replacing the function.
COMPLETION = (
    "status", "http_status", "error_type", "error_message", "upstream_model", "response_body",
    "tool_calls", "guardrail_findings", "quota", "usage_estimated", "prompt_tokens",
    "completion_tokens", "cached_tokens", "cost_usd", "latency_ms", "ttft_ms", "completed_at",
)
PAYLOAD = ("request_body", "response_body", "tool_calls", "tool_results")


def _array(names):
    return "ARRAY[" + ", ".join(f"'{name}'" for name in names) + "]::text[]"


def record_guard(derived=(), also_completed=()):
    """The guard function; `derived` columns (generated ones) are left out of the comparisons,
    `also_completed` columns (added later) may be set by a stream's completion too."""
    completion, payload = (*COMPLETION, *also_completed, *derived), (*PAYLOAD, *derived)
    return f"""
CREATE OR REPLACE FUNCTION audit_record_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('audit.purge', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit records are append-only: DELETE of record % refused', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF current_setting('audit.erase', true) = 'on' THEN
        IF (to_jsonb(NEW) - {_array(payload)}) = (to_jsonb(OLD) - {_array(payload)})
           AND NEW.request_body IS NULL AND NEW.response_body IS NULL
           AND NEW.tool_calls = '[]'::jsonb AND NEW.tool_results = '[]'::jsonb THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'an erasure may only remove the payload of audit record %', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status = 'in_progress'
       AND (to_jsonb(NEW) - {_array(completion)}) = (to_jsonb(OLD) - {_array(completion)})
       AND NOT EXISTS (SELECT 1 FROM audit_auditseal WHERE record_id = OLD.id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit records are append-only: UPDATE of record % refused (only the one completion of an unfinished stream is allowed)', OLD.id
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""


RECORD_GUARD = record_guard() + """
CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_auditrecord
    FOR EACH ROW EXECUTE FUNCTION audit_record_guard();
"""

REFUSE = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""

APPEND_ONLY_TABLES = (
    "audit_auditseal", "audit_auditcheckpoint", "audit_auditerasure", "audit_auditaccess",
)

# Only string values of the JSON are indexed, so keys and JSON syntax never match a search.
SEARCH_INDEX = """
CREATE INDEX audit_text_search ON audit_auditrecord USING gin ((
    jsonb_to_tsvector('english'::regconfig, coalesce(request_body, '{}'::jsonb), '["string"]')
    || jsonb_to_tsvector('english'::regconfig, coalesce(response_body, '{}'::jsonb), '["string"]')
));
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    statements = [RECORD_GUARD, REFUSE, SEARCH_INDEX]
    statements.append(
        "CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_auditrecord "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();"
    )
    for table in APPEND_ONLY_TABLES:
        statements.append(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();"
        )
        statements.append(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();"
        )
    for statement in statements:
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS audit_text_search;")
    schema_editor.execute("DROP TRIGGER IF EXISTS audit_record_append_only ON audit_auditrecord;")
    schema_editor.execute("DROP TRIGGER IF EXISTS audit_record_no_truncate ON audit_auditrecord;")
    for table in APPEND_ONLY_TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_record_guard();")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_change();")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_chain_policy_holds")]
    operations = [migrations.RunPython(forwards, backwards)]

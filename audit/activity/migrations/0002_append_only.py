"""PostgreSQL: the activity log is append-only, as the audit tables are (audit 0004).

UPDATE, DELETE and TRUNCATE are refused, with one exception: deleting a user account sets
`actor_user_id` to NULL on their events (on_delete=SET_NULL) and changes nothing else, so the
event keeps who made the change in `actor_label`. There is no retention purge or erasure of
activity, so unlike `audit.purge` / `audit.erase` there is no permission to turn on.
SQLite (the embedded default) gets no trigger, as for the audit tables.
"""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION activity_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.actor_user_id IS NOT NULL AND NEW.actor_user_id IS NULL
       AND (to_jsonb(NEW) - 'actor_user_id') = (to_jsonb(OLD) - 'actor_user_id') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'the activity log is append-only: TRUNCATE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'the activity log is append-only: % of event % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER activity_event_append_only BEFORE UPDATE OR DELETE ON activity_activityevent
    FOR EACH ROW EXECUTE FUNCTION activity_event_guard();
CREATE TRIGGER activity_event_no_truncate BEFORE TRUNCATE ON activity_activityevent
    FOR EACH STATEMENT EXECUTE FUNCTION activity_event_guard();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(GUARD, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for trigger in ("activity_event_append_only", "activity_event_no_truncate"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON activity_activityevent;")
    schema_editor.execute("DROP FUNCTION IF EXISTS activity_event_guard();")


class Migration(migrations.Migration):
    dependencies = [("activity", "0001_activity_log")]
    operations = [migrations.RunPython(forwards, backwards)]

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE TRIGGER audit_auditexport_append_only BEFORE UPDATE OR DELETE ON audit_auditexport "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();",
        params=None,
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS audit_auditexport_append_only ON audit_auditexport;", params=None
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_exports")]
    operations = [migrations.RunPython(forwards, backwards)]

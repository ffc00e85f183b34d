# One soft threshold per budget becomes a list of alert thresholds (default 50, 80, 95 %).

from django.db import migrations, models

import tenants.quotas.models


def carry_over(apps, schema_editor):
    # A budget left at the old default gets the new defaults; a chosen threshold is kept alone.
    Budget = apps.get_model("quotas", "Budget")
    for budget in Budget.objects.exclude(soft_threshold_pct=80):
        budget.alert_thresholds_pct = [budget.soft_threshold_pct]
        budget.save(update_fields=["alert_thresholds_pct"])


class Migration(migrations.Migration):
    dependencies = [
        ("quotas", "0002_one_rule_per_scope"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="budgetalert",
            name="one_alert_per_window",
        ),
        migrations.AddField(
            model_name="budget",
            name="alert_thresholds_pct",
            field=models.JSONField(default=tenants.quotas.models.default_alert_thresholds),
        ),
        migrations.RunPython(carry_over, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="budget",
            name="soft_threshold_pct",
        ),
        migrations.AddConstraint(
            model_name="budgetalert",
            constraint=models.UniqueConstraint(
                fields=("budget", "window_start", "end_user", "threshold_pct"),
                name="one_alert_per_threshold_and_window",
            ),
        ),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0005_rollup_seen_record'),
    ]

    operations = [
        migrations.AddField(
            model_name='rollupwatermark',
            name='open_record_ids',
            field=models.JSONField(default=list),
        ),
    ]

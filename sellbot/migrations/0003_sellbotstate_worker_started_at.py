from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sellbot", "0002_compliance_view"),
    ]

    operations = [
        migrations.AddField(
            model_name="sellbotstate",
            name="worker_started_at",
            field=models.DateTimeField(blank=True, help_text="When a Celery worker last started.", null=True),
        ),
    ]

"""Compliance officers may view sell decisions, cancellations, managed positions, fills and the bot's state."""
from django.db import migrations

from audit.permissions import grant_compliance_view, revoke_compliance_view

MODELS = ["selldecision", "sellcancellation", "managedposition", "autosellfill", "sellbotstate"]


def grant(apps, schema_editor):
    for model_name in MODELS:
        grant_compliance_view(apps, "sellbot", model_name)


def revoke(apps, schema_editor):
    for model_name in MODELS:
        revoke_compliance_view(apps, "sellbot", model_name)


class Migration(migrations.Migration):
    dependencies = [
        ("sellbot", "0001_initial"),
        ("audit", "0003_compliance_officers"),
    ]
    operations = [migrations.RunPython(grant, revoke)]

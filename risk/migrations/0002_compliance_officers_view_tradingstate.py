"""Compliance officers may view the trading states; the group comes from the audit app."""
from django.db import migrations

from audit.permissions import grant_compliance_view, revoke_compliance_view


def grant(apps, schema_editor):
    grant_compliance_view(apps, "risk", "tradingstate")


def revoke(apps, schema_editor):
    revoke_compliance_view(apps, "risk", "tradingstate")


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0001_initial"),
        ("audit", "0003_compliance_officers"),
    ]
    operations = [migrations.RunPython(grant, revoke)]

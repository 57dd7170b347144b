"""The "Compliance officers" group, view-only on what exists now (later apps add theirs)."""
from django.db import migrations

from audit.permissions import COMPLIANCE_GROUP, grant_compliance_view, revoke_compliance_view

MODELS = [
    ("accounts", "alpacaaccount"),
    ("accounts", "balancesnapshot"),
    ("accounts", "accounttypechange"),
    ("audit", "auditevent"),
    ("audit", "auditchaincheck"),
]


def create_group(apps, schema_editor):
    for app_label, model_name in MODELS:
        grant_compliance_view(apps, app_label, model_name)


def remove_group(apps, schema_editor):
    for app_label, model_name in MODELS:
        revoke_compliance_view(apps, app_label, model_name)
    apps.get_model("auth", "Group").objects.filter(name=COMPLIANCE_GROUP, permissions__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only_trigger"),
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_group, remove_group)]

"""The unmanaged ``Desk`` model (its permission only) and the "Desk" group holding ``desk.view_desk``."""
from django.db import migrations, models

from desk.permissions import DESK_GROUP, grant_desk_view


def create_group(apps, schema_editor):
    grant_desk_view(apps)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=DESK_GROUP).delete()


class Migration(migrations.Migration):
    initial = True
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [
        migrations.CreateModel(
            name="Desk",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"))],
            options={"managed": False, "default_permissions": (), "permissions": [("view_desk", "Can view the desk dashboard")]},
        ),
        migrations.RunPython(create_group, remove_group),
    ]

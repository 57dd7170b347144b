"""The "Desk" group and the permission it holds (``desk.view_desk``), created by the migration
``desk.0001_desk_group`` and kept by ``manage.py create_desk_user``."""
from __future__ import annotations

DESK_GROUP = "Desk"
DESK_PERMISSION = "desk.view_desk"


def grant_desk_view(apps) -> None:
    Group = apps.get_model("auth", "Group")
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    content_type, _ = ContentType.objects.get_or_create(app_label="desk", model="desk")
    permission, _ = Permission.objects.get_or_create(content_type=content_type, codename="view_desk",
                                                     defaults={"name": "Can view the desk dashboard"})
    group, _ = Group.objects.get_or_create(name=DESK_GROUP)
    group.permissions.add(permission)

"""The "Compliance officers" group and the view permissions it holds.

Migrations that add a model compliance officers must see call ``grant_compliance_view``:

    from audit.permissions import grant_compliance_view, revoke_compliance_view

    def grant(apps, schema_editor):
        grant_compliance_view(apps, "trading", "orderrecord")

    def revoke(apps, schema_editor):
        revoke_compliance_view(apps, "trading", "orderrecord")

    operations = [migrations.RunPython(grant, revoke)]

and depend on ``("audit", "0003_compliance_officers")``. Permissions are created here when the
post_migrate signal has not made them yet (it runs only after every migration).
"""
from __future__ import annotations

COMPLIANCE_GROUP = "Compliance officers"


def grant_compliance_view(apps, app_label: str, model_name: str) -> None:
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=COMPLIANCE_GROUP)
    group.permissions.add(_view_permission(apps, app_label, model_name))


def revoke_compliance_view(apps, app_label: str, model_name: str) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=COMPLIANCE_GROUP).first()
    if group is not None:
        group.permissions.remove(*Permission.objects.filter(content_type__app_label=app_label, codename=f"view_{model_name.lower()}"))


def _view_permission(apps, app_label: str, model_name: str):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    model = apps.get_model(app_label, model_name)
    content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model._meta.model_name)
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename=f"view_{model._meta.model_name}",
        defaults={"name": f"Can view {model._meta.verbose_name}"},
    )
    return permission

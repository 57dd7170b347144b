"""The desk dashboard has no tables of its own: this unmanaged model only carries its permission,
``desk.view_desk``, which the "Desk" group holds (docs/console.md, "Who sees what")."""
from django.db import models


class Desk(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_desk", "Can view the desk dashboard")]

    def __str__(self) -> str:
        return "desk"

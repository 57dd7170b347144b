"""Audit events for things other apps announce with signals (connected in ``AuditConfig.ready``)."""
from django.dispatch import receiver

from audit.models import ActorType
from audit.services import audit_record
from opitios.admin_export import exported


@receiver(exported)
def record_admin_export(sender, *, model_admin, request, fmt: str, **kwargs) -> None:
    filters = {key: request.GET.getlist(key) for key in request.GET if key != "p"}
    audit_record(actor_type=ActorType.ADMIN, actor_id=request.user.get_username(), action="admin.exported",
                 data={"model": model_admin.opts.label_lower, "format": fmt, "filters": filters})

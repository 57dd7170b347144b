"""The admin export toolkit (``opitios.admin_export``) with the audit event every export records."""
from audit.models import ActorType
from audit.services import audit_record
from opitios.admin_export import ExportMixin


class AuditedExportMixin(ExportMixin):
    def record_export(self, request, fmt: str) -> None:
        filters = {key: request.GET.getlist(key) for key in request.GET if key != "p"}
        audit_record(actor_type=ActorType.ADMIN, actor_id=request.user.get_username(), action="admin.exported",
                     data={"model": self.opts.label_lower, "format": fmt, "filters": filters})

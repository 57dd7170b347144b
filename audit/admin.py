"""Admin for the audit trail: read-only for everyone (append-only, enforced a third time here)."""
from django.contrib import admin

from audit.admin_export import AuditedExportMixin
from audit.models import AuditChainCheck, AuditEvent
from opitios.admin_export import ReadOnlyAdminMixin
from opitios.admin_filters import DateRangeFilter
from opitios.admin_format import ConsoleFormatMixin, pretty_json


@admin.register(AuditEvent)
class AuditEventAdmin(ConsoleFormatMixin, AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("seq", "at", "actor_type", "actor_id", "action", "account", "account_type", "object_type", "object_id", "short_hash")
    list_display_links = ("seq", "action")
    list_filter = (
        "action",
        "actor_type",
        ("account", admin.RelatedOnlyFieldListFilter),
        "account__account_type",
        ("at", DateRangeFilter),
    )
    search_fields = ("action", "object_id", "actor_id", "data")
    date_hierarchy = "at"
    list_select_related = ("account",)
    show_full_result_count = False
    list_per_page = 100
    fields = ("seq", "at", "actor_type", "actor_id", "action", "account", "object_type", "object_id", "data_pretty", "prev_hash", "hash")
    readonly_fields = ("data_pretty",)
    export_fields = (
        "seq", "at", "actor_type", "actor_id", "action", ("account", "account__account_id"), ("account_type", "account__account_type"),
        "object_type", "object_id", "data", "prev_hash", "hash",
    )

    @admin.display(description="account type", ordering="account__account_type")
    def account_type(self, event):
        return event.account.account_type if event.account_id else "-"

    @admin.display(description="hash")
    def short_hash(self, event):
        return event.hash[:12]

    @admin.display(description="data")
    def data_pretty(self, event):
        return pretty_json(event.data)


@admin.register(AuditChainCheck)
class AuditChainCheckAdmin(ConsoleFormatMixin, AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("ran_at", "ok", "count", "last_seq", "first_broken_seq", "reason", "since_seq", "source", "duration_ms")
    list_filter = ("ok", "source", ("ran_at", DateRangeFilter))
    date_hierarchy = "ran_at"

"""The read-only compliance view of ``OrderRecord``: filters, search, CSV/JSONL export
and daily p50/p95/p99 latency above the list."""
from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from audit.admin_export import AuditedExportMixin
from opitios.admin_export import ReadOnlyAdminMixin
from opitios.admin_filters import DateRangeFilter

from .models import OrderRecord
from .selectors import order_latency_daily


@admin.register(OrderRecord)
class OrderRecordAdmin(AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    change_list_template = "admin/trading/orderrecord/change_list.html"
    list_display = ("received_at", "account", "account_type", "source", "side", "symbol", "qty", "notional", "order_type",
                    "outcome", "error_code", "http_status", "total_ms", "broker_ms", "overhead_ms")
    list_filter = ("account_type", ("account", admin.RelatedOnlyFieldListFilter), "source", "outcome", "asset_class",
                   ("received_at", DateRangeFilter))
    search_fields = ("symbol", "broker_order_id", "client_order_id")
    date_hierarchy = "received_at"
    list_select_related = ("account",)
    show_full_result_count = False
    list_per_page = 100
    export_fields = (
        ("account", "account__account_id"), "account_type", "source", "user_id", "client_order_id", "attempt", "broker_order_id",
        "symbol", "asset_class", "side", "order_type", "time_in_force", "qty", "notional", "limit_price", "stop_price",
        "outcome", "broker_status", "error_code", "error_message", "http_status", "balance_status",
        "received_at", "submitted_at", "responded_at", "completed_at", "total_ms", "broker_ms", "overhead_ms",
    )

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context=extra_context)
        context = getattr(response, "context_data", None) or {}
        cl = context.get("cl")
        if cl is not None:
            since = timezone.now() - timedelta(days=14)
            response.context_data["latency_daily"] = order_latency_daily(cl.queryset.filter(received_at__gte=since))
        return response

"""The read-only compliance view of ``OrderRecord``: filters, search, CSV/JSONL export
and daily p50/p95/p99 latency above the list; each record's timeline and stored response."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.admin_export import AuditedExportMixin
from opitios.admin_export import ReadOnlyAdminMixin
from opitios.admin_filters import DateRangeFilter
from opitios.admin_format import ConsoleFormatMixin, pretty_json

from .models import OrderEvent, OrderRecord
from .selectors import order_latency_daily, order_timeline


@admin.register(OrderRecord)
class OrderRecordAdmin(ConsoleFormatMixin, AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    change_list_template = "admin/trading/orderrecord/change_list.html"
    # The key columns fit 1440 px beside the filter bar; the rest is on the record's page and in the export.
    list_display = ("received_at", "account", "account_type", "order_type", "symbol", "side", "qty", "outcome", "total_ms",
                    "broker_ms", "error_code")
    list_filter = ("account_type", ("account", admin.RelatedOnlyFieldListFilter), "source", "action", "outcome", "asset_class",
                   "order_class", ("received_at", DateRangeFilter))
    search_fields = ("symbol", "broker_order_id", "client_order_id")
    date_hierarchy = "received_at"
    list_select_related = ("account",)
    show_full_result_count = False
    list_per_page = 100
    fieldsets = (
        (None, {"fields": ("account", "account_type", "source", "user_id", "client_order_id", "attempt", "is_current",
                           "broker_order_id", "action", "replaces", "replaces_order_id")}),
        ("Order", {"fields": ("symbol", "asset_class", "side", "order_type", "time_in_force", "qty", "notional", "limit_price",
                              "stop_price", "extended_hours", "auto_sell_enabled", "order_class", "legs", "trail_price",
                              "trail_percent")}),
        ("Outcome", {"fields": ("outcome", "broker_status", "error_code", "error_message", "http_status", "balance_status",
                                "recovered")}),
        ("Fills", {"fields": ("filled_qty", "filled_avg_price", "filled_at", "first_fill_ms", "last_fill_ms")}),
        ("Timeline", {"fields": ("timeline", "total_ms", "broker_ms", "overhead_ms")}),
        ("Stored response", {"fields": ("response_pretty",)}),
    )
    export_fields = (
        ("account", "account__account_id"), "account_type", "source", "user_id", "client_order_id", "attempt", "broker_order_id",
        "symbol", "asset_class", "side", "order_type", "time_in_force", "qty", "notional", "limit_price", "stop_price",
        "outcome", "broker_status", "error_code", "error_message", "http_status", "balance_status",
        "received_at", "submitted_at", "responded_at", "completed_at", "total_ms", "broker_ms", "overhead_ms",
        "filled_qty", "filled_avg_price", "filled_at", "first_fill_ms", "last_fill_ms",
        "action", "replaces_order_id", "order_class", "legs", "trail_price", "trail_percent",
    )

    @admin.display(description="timeline (UTC, time since the previous step)")
    def timeline(self, record):
        return render_to_string("admin/trading/orderrecord/timeline.html", {"steps": order_timeline(record)})

    @admin.display(description="response (as returned to the client)")
    def response_pretty(self, record):
        return pretty_json(record.response)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context=extra_context)
        context = getattr(response, "context_data", None) or {}
        cl = context.get("cl")
        if cl is not None:
            since = timezone.now() - timedelta(days=14)
            response.context_data["latency_daily"] = order_latency_daily(cl.queryset.filter(received_at__gte=since))
        return response


@admin.register(OrderEvent)
class OrderEventAdmin(ConsoleFormatMixin, AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every broker event of every order (the trade-updates ledger), newest first."""

    list_display = ("broker_at", "account", "event", "symbol", "side", "qty", "price", "position_qty", "order_status", "record_link",
                    "reconciled")
    list_filter = ("event", ("account", admin.RelatedOnlyFieldListFilter), "order_status", "reconciled", ("broker_at", DateRangeFilter))
    search_fields = ("symbol", "broker_order_id", "client_order_id", "execution_id")
    date_hierarchy = "broker_at"
    list_select_related = ("account",)
    show_full_result_count = False
    list_per_page = 100
    fields = ("account", "record_link", "broker_order_id", "client_order_id", "event", "symbol", "side", "order_status", "qty", "price",
              "position_qty", "order_filled_qty", "execution_id", "broker_at", "received_at", "reconciled")
    export_fields = (
        ("account", "account__account_id"), "record_id", "broker_order_id", "client_order_id", "event", "symbol", "side",
        "order_status", "qty", "price", "position_qty", "order_filled_qty", "execution_id", "broker_at", "received_at", "reconciled",
    )

    @admin.display(description="order record")
    def record_link(self, event):
        if event.record_id is None:
            return "—"
        url = reverse("admin:trading_orderrecord_change", args=[event.record_id])
        return format_html('<a href="{}">#{}</a>', url, event.record_id)

"""Admin for the sell bot: managed positions (opt in/out through the service), decisions and
cancellations read-only for compliance."""
from django.contrib import admin, messages

from audit.admin_export import AuditedExportMixin
from opitios.admin_export import ReadOnlyAdminMixin
from opitios.admin_filters import DateRangeFilter
from opitios.admin_format import ConsoleFormatMixin

from . import selectors, services
from .models import AutoSellFill, ManagedPosition, SellBotState, SellCancellation, SellDecision


@admin.register(ManagedPosition)
class ManagedPositionAdmin(ConsoleFormatMixin, admin.ModelAdmin):
    list_display = ("account", "symbol", "qty", "entry_price", "high_water_mark", "status", "opted_in", "origin", "opened_at",
                    "exit_reason", "exit_attempts", "exit_cancellations")
    list_filter = ("status", "opted_in", "origin", "account__account_type")
    search_fields = ("symbol", "account__account_id", "exit_client_order_id")
    date_hierarchy = "opened_at"
    actions = ("opt_in", "opt_out")
    readonly_fields = [f.name for f in ManagedPosition._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _set(self, request, queryset, opted_in: bool) -> None:
        actor = f"admin:{request.user.get_username()}"
        for position in queryset:
            services.position_set_opt_in(position=position, opted_in=opted_in, actor_id=actor)
        self.message_user(request, f"{queryset.count()} position(s) opted {'in' if opted_in else 'out'}.", messages.SUCCESS)

    @admin.action(description="Opt in: the sell bot manages these positions", permissions=["change"])
    def opt_in(self, request, queryset):
        self._set(request, queryset, True)

    @admin.action(description="Opt out: the sell bot never touches these positions", permissions=["change"])
    def opt_out(self, request, queryset):
        self._set(request, queryset, False)


@admin.register(SellDecision)
class SellDecisionAdmin(ConsoleFormatMixin, AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("decided_at", "account", "symbol", "reason", "price", "entry_price", "pl_pct", "qty", "attempt", "order_type",
                    "limit_price", "client_order_id", "outcome")
    list_filter = ("account__account_type", ("account", admin.RelatedOnlyFieldListFilter), "reason", "outcome", "order_type",
                   ("decided_at", DateRangeFilter))
    list_select_related = ("account",)
    export_fields = ("id", "decided_at", ("account", "account__account_id"), "position_id", "symbol", "reason", "detail", "price",
                     "entry_price", "pl_pct", "qty", "attempt", "order_type", "limit_price", "client_order_id", "broker_order_id",
                     "outcome", "error")
    search_fields = ("symbol", "client_order_id", "broker_order_id", "account__account_id")
    date_hierarchy = "decided_at"


@admin.register(SellCancellation)
class SellCancellationAdmin(ConsoleFormatMixin, AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "account", "symbol", "order_type", "side", "order_id", "age_seconds", "limit_minutes", "attempts",
                    "outcome", "error", "total_ms")
    list_filter = ("account__account_type", ("account", admin.RelatedOnlyFieldListFilter), "outcome", "order_type", "side",
                   ("created_at", DateRangeFilter))
    list_select_related = ("account",)
    export_fields = ("id", "created_at", ("account", "account__account_id"), "order_id", "client_order_id", "symbol", "order_type", "side",
                     "order_status", "filled_qty", "submitted_at", "age_seconds", "limit_minutes", "reason", "attempts", "outcome",
                     "error", "last_attempt_at", "next_attempt_at", "finished_at", "last_broker_ms", "total_ms")
    search_fields = ("symbol", "order_id", "client_order_id", "account__account_id")
    date_hierarchy = "created_at"


@admin.register(AutoSellFill)
class AutoSellFillAdmin(ConsoleFormatMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("account", "client_order_id", "symbol", "filled_qty", "filled_avg_price", "broker_status", "final", "position")
    search_fields = ("symbol", "client_order_id", "broker_order_id")


@admin.register(SellBotState)
class SellBotStateAdmin(ConsoleFormatMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("enabled", "status", "heartbeat_at", "last_sweep_started_at", "last_sweep_finished_at", "last_sweep_duration_ms",
                    "holds", "worker", "changed_by", "changed_at")
    readonly_fields = ("holds",)

    @admin.display(description="holds by reason")
    def holds(self, obj) -> str:
        """Why positions were not sold (market_closed among them), so a quiet bot explains itself."""
        counts = selectors.counters(selectors.HOLD_PREFIX)
        return ", ".join(f"{reason}: {n}" for reason, n in counts.items()) or "none"

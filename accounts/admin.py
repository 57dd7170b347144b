"""Operators' admin for accounts: type, mismatch and balance at a glance; thresholds
editable (applied to the next order); credentials write-only; "Detect account type" action."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts import detection, services
from accounts.models import AccountTypeChange, AlpacaAccount, BalanceSnapshot
from accounts.selectors import account_type_distribution, accounts_with_last_balance
from audit.admin_export import AuditedExportMixin
from opitios.admin_export import ReadOnlyAdminMixin
from opitios.admin_filters import DateRangeFilter
from opitios.admin_format import ConsoleFormatMixin, money

# Exported and shown fields; the encrypted credentials are never among them.
ACCOUNT_FIELDS = (
    "account_id", "name", "tier", "enabled", "paper_trading", "account_number", "account_type", "type_source", "detected_at",
    "detection_error", "type_mismatch", "config_error", "config_warning", "minimum_balance", "balance_check_enabled", "rate_limit_per_minute", "max_connections",
    "created_at", "updated_at",
)
SECRET_FIELDS = frozenset({"api_key_encrypted", "secret_key_encrypted"})
assert not SECRET_FIELDS & set(ACCOUNT_FIELDS)


class AlpacaAccountForm(forms.ModelForm):
    """New credentials may be typed in; stored ones are never rendered (not even encrypted)."""

    new_api_key = forms.CharField(
        required=False, strip=True, label="New API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored key. The stored value is never shown.",
    )
    new_secret_key = forms.CharField(
        required=False, strip=True, label="New secret key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored secret. The stored value is never shown.",
    )

    class Meta:
        model = AlpacaAccount
        fields = list(services.ADMIN_EDITABLE)


class ConfigStateFilter(admin.SimpleListFilter):
    title = "secrets.yml entry"
    parameter_name = "config"

    def lookups(self, request, model_admin):
        return (("invalid", "invalid (not tradable)"), ("flagged", "settings dropped"), ("ok", "ok"))

    def queryset(self, request, queryset):
        if self.value() == "invalid":
            return queryset.exclude(config_error="")
        if self.value() == "flagged":
            return queryset.filter(config_error="").exclude(config_warning="")
        if self.value() == "ok":
            return queryset.filter(config_error="", config_warning="")
        return queryset


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@admin.register(AlpacaAccount)
class AlpacaAccountAdmin(ConsoleFormatMixin, AuditedExportMixin, admin.ModelAdmin):
    form = AlpacaAccountForm
    export_fields = ACCOUNT_FIELDS
    list_display = (
        "account_id", "name", "tier", "account_type", "type_source", "mismatch_flag", "config_state", "enabled",
        "configured", "last_balance", "detected_at",
    )
    list_filter = ("account_type", "tier", "type_source", "type_mismatch", ConfigStateFilter, "enabled", "paper_trading")
    search_fields = ("account_id", "name", "account_number")
    actions = ["detect_account_type"]
    readonly_fields = (
        "account_id", "paper_trading", "account_number", "account_type", "type_source", "type_mismatch",
        "detected_at", "detection_error", "config_error", "config_warning", "created_at", "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("account_id", "name", "tier", "enabled", "paper_trading")}),
        ("secrets.yml entry (from the last sync)", {"fields": ("config_error", "config_warning")}),
        ("Detected type", {"fields": ("account_number", "account_type", "type_source", "type_mismatch", "detected_at", "detection_error")}),
        ("Thresholds (apply to the next order)", {"fields": ("minimum_balance", "balance_check_enabled", "rate_limit_per_minute", "max_connections")}),
        ("Credentials (write-only)", {"fields": ("new_api_key", "new_secret_key")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return accounts_with_last_balance()

    def has_add_permission(self, request):
        return False  # accounts come from secrets.yml (manage.py sync_accounts)

    def changelist_view(self, request, extra_context=None):
        distribution = account_type_distribution()
        extra = {"subtitle": "  ·  ".join(f"{kind}: {count}" for kind, count in distribution.items())}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def has_delete_permission(self, request, obj=None):
        return False  # records point at accounts; disable instead

    # Only an alarm is drawn as one: a healthy "no mismatch" is a dash, not a red cross.
    @admin.display(description="mismatch", ordering="type_mismatch")
    def mismatch_flag(self, obj):
        return mark_safe('<strong style="color:#ba2121">MISMATCH</strong>') if obj.type_mismatch else "—"  # noqa: S308 - a constant

    @admin.display(description="secrets.yml entry", ordering="config_error")
    def config_state(self, obj):
        if obj.config_error:
            return format_html('<strong style="color:#ba2121">invalid, not tradable</strong>: {}', obj.config_error)
        if obj.config_warning:
            return format_html('<span style="color:#a36c00">settings dropped</span>: {}', obj.config_warning)
        return "ok"

    @admin.display(description="configured", ordering="paper_trading")
    def configured(self, obj):
        return "paper" if obj.paper_trading else "live"

    @admin.display(description="last balance (age)", ordering="last_fetched_at")
    def last_balance(self, obj):
        if obj.last_fetched_at is None:
            return "—"
        age = (timezone.now() - obj.last_fetched_at).total_seconds()
        return format_html("{} <small>({} ago)</small>", money(obj.last_cash), _age(age))

    def save_model(self, request, obj, form, change):
        services.account_update(
            account=obj,
            changes={name: form.cleaned_data[name] for name in services.ADMIN_EDITABLE if name in form.cleaned_data},
            api_key=form.cleaned_data.get("new_api_key") or None,
            secret_key=form.cleaned_data.get("new_secret_key") or None,
            actor_id=request.user.get_username(),
        )

    @admin.action(description="Detect account type", permissions=["change"])
    def detect_account_type(self, request, queryset):
        accounts = list(AlpacaAccount.objects.filter(pk__in=queryset.values("pk")))
        summary = detection.accounts_detect_types(accounts=accounts, actor_type="admin", actor_id=request.user.get_username())
        level = messages.WARNING if summary.mismatch or summary.failed else messages.SUCCESS
        self.message_user(
            request,
            f"Detected {len(accounts)} accounts: paper {summary.paper}, live {summary.live}, "
            f"mismatch {summary.mismatch}, failed {summary.failed}, type changes {summary.changed}.",
            level,
        )


@admin.register(BalanceSnapshot)
class BalanceSnapshotAdmin(ConsoleFormatMixin, AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("account", "cash", "buying_power", "equity", "fetched_at")
    list_filter = ("account__account_type", ("account", admin.RelatedOnlyFieldListFilter), ("fetched_at", DateRangeFilter))
    search_fields = ("account__account_id",)
    date_hierarchy = "fetched_at"
    list_select_related = ("account",)
    show_full_result_count = False
    export_fields = ("id", ("account", "account__account_id"), ("account_type", "account__account_type"), "cash", "buying_power", "equity", "fetched_at")


@admin.register(AccountTypeChange)
class AccountTypeChangeAdmin(ConsoleFormatMixin, AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("account", "old_type", "new_type", "old_account_number", "new_account_number", "changed_at")
    list_filter = ("new_type", ("account", admin.RelatedOnlyFieldListFilter), ("changed_at", DateRangeFilter))
    search_fields = ("account__account_id", "old_account_number", "new_account_number")
    date_hierarchy = "changed_at"
    list_select_related = ("account",)
    export_fields = ("id", ("account", "account__account_id"), "old_type", "new_type", "old_account_number", "new_account_number", "changed_at")

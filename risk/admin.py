"""The kill switch in the admin: the trading states, and actions on the account list.

Actions take the reason from the action bar's "reason" field (required); they call the same service
as the API, so every change is audited. The account admin lives in ``accounts`` (a lower layer, which
cannot import this app), so its actions are added here, when the admin modules load.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm

from accounts.admin import AlpacaAccountAdmin
from accounts.models import AlpacaAccount

from .models import GLOBAL, State, TradingState
from .states import trading_state_set


class ReasonActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=500, label="Reason",
                             help_text="Required by the trading-state actions; recorded in the audit trail.")


def _set(modeladmin, request, accounts: list[AlpacaAccount | None], state: str) -> None:
    reason = (request.POST.get("reason") or "").strip()
    if not reason:
        modeladmin.message_user(request, "Give a reason in the action bar to change a trading state.", messages.ERROR)
        return
    changed = 0
    for account in accounts:
        changed += trading_state_set(account=account, state=state, reason=reason, actor_type="admin",
                                     actor_id=request.user.get_username()).changed
    modeladmin.message_user(request, f"{changed} trading state(s) set to {state}.", messages.SUCCESS)


def _actions(resolve):
    def make(state: str):
        def action(modeladmin, request, queryset):
            _set(modeladmin, request, resolve(queryset), state)
        action.__name__ = f"trading_state_{state}"
        return admin.action(description=f"Trading state: {state} (give a reason)", permissions=["change"])(action)
    return [make(s) for s in (State.ACTIVE, State.REDUCING, State.HALTED)]


def _accounts_of_states(queryset) -> list[AlpacaAccount | None]:
    return [row.account if row.scope != GLOBAL else None for row in queryset.select_related("account")]


@admin.register(TradingState)
class TradingStateAdmin(admin.ModelAdmin):
    list_display = ("scope", "state", "reason", "changed_by", "changed_at")
    list_filter = ("state",)
    search_fields = ("scope", "reason")
    action_form = ReasonActionForm
    actions = _actions(_accounts_of_states)
    readonly_fields = ("scope", "state", "reason", "changed_by", "changed_at")

    def has_add_permission(self, request):
        return False  # rows are made by the service (API, command, actions)

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if self.has_change_permission(request):  # the global row is there to act on (officers only look)
            TradingState.objects.get_or_create(scope=GLOBAL)
        return super().changelist_view(request, extra_context)


# The account list gets the same actions (and the reason field in its action bar).
AlpacaAccountAdmin.action_form = ReasonActionForm
AlpacaAccountAdmin.actions = [*AlpacaAccountAdmin.actions, *_actions(lambda qs: list(AlpacaAccount.objects.filter(pk__in=qs.values("pk"))))]

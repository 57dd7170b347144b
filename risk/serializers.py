"""Shapes of the trading-state API (docs/api.md, "Risk controls")."""
from rest_framework import serializers

from opitios.serializers import IsoDateTimeField, lean_renderer

from .models import State


class TradingStateInSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["global", "account"], help_text="global, or one account (then account_id).")
    account_id = serializers.CharField(required=False, max_length=64)
    state = serializers.ChoiceField(choices=State.values)
    reason = serializers.CharField(max_length=500, allow_blank=False, trim_whitespace=True)

    def validate(self, attrs):
        if attrs["scope"] == "account" and not attrs.get("account_id"):
            raise serializers.ValidationError({"account_id": ["Required when scope is account."]})
        if attrs["scope"] == "global" and attrs.get("account_id"):
            raise serializers.ValidationError({"account_id": ["Not allowed when scope is global."]})
        return attrs


class ScopeStateSerializer(serializers.Serializer):
    scope = serializers.CharField(help_text='"global" or "account:<account_id>".')
    state = serializers.ChoiceField(choices=State.values)
    reason = serializers.CharField()
    changed_by = serializers.CharField()
    changed_at = IsoDateTimeField(timespec="milliseconds", allow_null=True)


class TradingStatesSerializer(serializers.Serializer):
    states = ScopeStateSerializer(many=True, help_text="The global state first, then each account whose state was ever set.")


class TradingStateChangeSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when the scope already had this state and reason.")
    old = ScopeStateSerializer()
    new = ScopeStateSerializer()


scope_state_json = lean_renderer(ScopeStateSerializer)
trading_states_json = lean_renderer(TradingStatesSerializer, prerendered=("states",))
trading_state_change_json = lean_renderer(TradingStateChangeSerializer, prerendered=("old", "new"))

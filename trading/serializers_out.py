"""The trading API's order response serializers: the order (with its legs), the order intent, the placement
answer, its checks, timing and account reference, cancel and bulk results. They define the shapes; the hot paths
render them with ``lean_renderer`` (trading/formatting.py). Split out of trading/serializers.py (inputs and the
other outputs stay there)."""
from __future__ import annotations

from rest_framework import serializers

from opitios.serializers import ErrorDetailSerializer, IsoDateTimeField, lean_renderer

from . import balance
from .fields import CentsField, RoundedFloatField
from .intents import ORDER_CLASSES

# --- order outputs -------------------------------------------------------------------------------


# A BalanceCheck (trading/balance.py), rendered by formatting.balance_check_json.
class BalanceCheckSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=balance.STATUSES)
    cash = CentsField(allow_null=True)
    minimum_balance = CentsField(allow_null=True)
    source = serializers.ChoiceField(choices=["snapshot", "live"], allow_null=True)
    age_seconds = RoundedFloatField(decimals=3, allow_null=True)
    fallback = serializers.BooleanField(required=False, help_text="Present (true) when the cash is an older fallback snapshot.")
    reducing_sell = serializers.BooleanField(required=False,
                                             help_text="Present when the check asked whether the order only reduces a position.")
    fetch_error = serializers.CharField(required=False, help_text="Present when the live balance could not be fetched.")

    class Meta:
        omit_none = ("fallback", "reducing_sell", "fetch_error")


class ChecksSerializer(serializers.Serializer):
    balance = BalanceCheckSerializer(required=False)


class AccountRefSerializer(serializers.Serializer):
    """The account an answer is about, as every account-scoped response names it."""

    id = serializers.CharField(source="account_id")
    type = serializers.ChoiceField(source="account_type", choices=["paper", "live"])


class TimingSerializer(serializers.Serializer):
    received_at = IsoDateTimeField()
    submitted_at = IsoDateTimeField(allow_null=True)
    responded_at = IsoDateTimeField(allow_null=True)
    completed_at = IsoDateTimeField(allow_null=True)
    total_ms = serializers.FloatField(allow_null=True)
    broker_ms = serializers.FloatField(allow_null=True)
    overhead_ms = serializers.FloatField(allow_null=True)


class TakeProfitSerializer(serializers.Serializer):
    limit_price = serializers.CharField()


class StopLossSerializer(serializers.Serializer):
    stop_price = serializers.CharField()
    limit_price = serializers.CharField(allow_null=True)


class OrderIntentSerializer(serializers.Serializer):
    """The order as the client asked for it: ``details.order`` of an order's error answer and its audit event."""

    symbol = serializers.CharField()
    asset_class = serializers.CharField()
    side = serializers.CharField()
    type = serializers.CharField()
    time_in_force = serializers.CharField()
    qty = serializers.CharField(allow_null=True)
    notional = serializers.CharField(allow_null=True)
    limit_price = serializers.CharField(allow_null=True)
    stop_price = serializers.CharField(allow_null=True)
    extended_hours = serializers.BooleanField()
    client_order_id = serializers.CharField()
    order_class = serializers.ChoiceField(choices=ORDER_CLASSES)
    take_profit = TakeProfitSerializer(allow_null=True, help_text="The requested take-profit leg (bracket, oco, oto).")
    stop_loss = StopLossSerializer(allow_null=True, help_text="The requested stop-loss leg (bracket, oco, oto).")
    trail_price = serializers.CharField(allow_null=True)
    trail_percent = serializers.CharField(allow_null=True)
    action = serializers.ChoiceField(choices=["place", "replace"], help_text="replace: a PATCH of the order in replaces.")
    replaces = serializers.CharField(allow_null=True, help_text="The broker order id a replacement replaces.")


class _OrderFieldsSerializer(serializers.Serializer):
    id = serializers.CharField()
    client_order_id = serializers.CharField()
    symbol = serializers.CharField()
    asset_class = serializers.CharField()
    side = serializers.CharField()
    type = serializers.CharField()
    time_in_force = serializers.CharField()
    status = serializers.CharField()
    qty = serializers.CharField(allow_null=True)
    notional = serializers.CharField(allow_null=True)
    filled_qty = serializers.CharField(allow_null=True)
    filled_avg_price = serializers.CharField(allow_null=True)
    limit_price = serializers.CharField(allow_null=True)
    stop_price = serializers.CharField(allow_null=True)
    extended_hours = serializers.BooleanField()
    created_at = IsoDateTimeField(allow_null=True)
    submitted_at = IsoDateTimeField(allow_null=True)
    filled_at = IsoDateTimeField(allow_null=True)
    canceled_at = IsoDateTimeField(allow_null=True)
    order_class = serializers.ChoiceField(choices=ORDER_CLASSES, required=False)
    trail_price = serializers.CharField(allow_null=True, required=False)
    trail_percent = serializers.CharField(allow_null=True, required=False)
    hwm = serializers.CharField(allow_null=True, required=False, help_text="A trailing stop's high (low) water mark.")
    replaces = serializers.CharField(allow_null=True, required=False, help_text="The order this one replaced.")
    replaced_by = serializers.CharField(allow_null=True, required=False, help_text="The order that replaced this one.")


class _LegListSerializer(serializers.ListSerializer):
    """The legs, rendered lean as the order is; ``null`` (not ``[]``) for a simple order."""

    def to_representation(self, data):
        return [_leg_json(leg) for leg in data] or None


class OrderLegSerializer(_OrderFieldsSerializer):
    """A take-profit or stop-loss leg (Alpaca's own order for it)."""

    class Meta:
        list_serializer_class = _LegListSerializer


_leg_json = lean_renderer(OrderLegSerializer)


class OrderSerializer(_OrderFieldsSerializer):
    legs = OrderLegSerializer(many=True, allow_null=True, required=False,
                              help_text="A bracket's or oto's exit orders, an oco's stop-loss order; null for a simple order.")


class PlacedOrderSerializer(OrderSerializer):
    account = AccountRefSerializer()
    source = serializers.ChoiceField(choices=["api", "bulk", "sellbot"])
    checks = ChecksSerializer()
    timing = TimingSerializer()
    replayed = serializers.BooleanField()
    recovered = serializers.BooleanField(required=False, help_text="Found at the broker by client_order_id after an earlier fault.")

    class Meta:
        omit_none = ("recovered",)


class OrderListSerializer(serializers.Serializer):
    account = AccountRefSerializer()
    orders = OrderSerializer(many=True)


class CancelResultSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    account = AccountRefSerializer()


class BulkResultItemSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    status_code = serializers.IntegerField()
    order = PlacedOrderSerializer(required=False)
    error = ErrorDetailSerializer(required=False)

    class Meta:
        omit_none = ("order", "error")


class BulkSummarySerializer(serializers.Serializer):
    accounts = serializers.IntegerField()
    accepted = serializers.IntegerField()
    not_accepted = serializers.IntegerField()


class BulkResultSerializer(serializers.Serializer):
    client_order_id = serializers.CharField(help_text="The client_order_id used on every account (generated once when the order "
                                            "gave none): retry the bulk with it to replay instead of placing again.")
    results = BulkResultItemSerializer(many=True)
    summary = BulkSummarySerializer()

"""Request and response serializers of the trading API: inputs validate; outputs define the response shapes
(the order, order intent, quote, timing and account-reference shapes are rendered from them by trading/formatting.py)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rest_framework import serializers

from accounts.broker import TIMEFRAMES
from opitios.serializers import ErrorDetailSerializer, ErrorResponseSerializer, IsoDateTimeField  # noqa: F401 - re-exported for the views

from . import balance
from .fields import StrictDecimalField
from .intents import OPTION, ORDER_TYPES, SIDES, STOCK, STOCK_TIME_IN_FORCE, OrderIntent, client_intent_errors

MONEY = {"max_digits": 20, "decimal_places": 6, "coerce_to_string": True}
QTY = {"max_digits": 20, "decimal_places": 9, "coerce_to_string": True}


# --- errors -------------------------------------------------------------------------------------



# --- order inputs -----------------------------------------------------------------------------


class _OrderInputBase(serializers.Serializer):
    side = serializers.ChoiceField(choices=SIDES)
    type = serializers.ChoiceField(choices=ORDER_TYPES)
    limit_price = StrictDecimalField(required=False, allow_null=True, min_value=0, **MONEY)
    stop_price = StrictDecimalField(required=False, allow_null=True, min_value=0, **MONEY)
    client_order_id = serializers.CharField(required=False, allow_null=True, max_length=48, min_length=1,
                                            help_text="Your idempotency key (≤ 48 characters). Generated when absent.")
    account_id = serializers.CharField(required=False, max_length=64, help_text="The account; defaults to the token's account_id claim.")

    def validate(self, attrs):
        self._intent = self.to_intent_from(attrs)
        errors = client_intent_errors(self._intent)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    @property
    def intent(self) -> OrderIntent:
        return self._intent


class StockOrderInputSerializer(_OrderInputBase):
    symbol = serializers.CharField(max_length=16, help_text="Stock symbol, e.g. AAPL.")
    qty = StrictDecimalField(required=False, allow_null=True, min_value=0, **QTY)
    notional = StrictDecimalField(required=False, allow_null=True, min_value=0, max_digits=20, decimal_places=2, coerce_to_string=True)
    time_in_force = serializers.ChoiceField(choices=STOCK_TIME_IN_FORCE, help_text="Sent to Alpaca as given.")
    extended_hours = serializers.BooleanField(required=False, default=False)

    def to_intent_from(self, a) -> OrderIntent:
        return OrderIntent(
            symbol=a["symbol"].strip().upper(), side=a["side"], type=a["type"], time_in_force=a["time_in_force"],
            asset_class=STOCK, qty=a.get("qty"), notional=a.get("notional"), limit_price=a.get("limit_price"),
            stop_price=a.get("stop_price"), extended_hours=a.get("extended_hours", False), client_order_id=a.get("client_order_id"),
        )


class OptionOrderInputSerializer(_OrderInputBase):
    option_symbol = serializers.CharField(max_length=32, help_text="Compact OCC symbol, e.g. AAPL260116C00190000.")
    qty = StrictDecimalField(min_value=0, **QTY, help_text="Whole number of contracts.")
    time_in_force = serializers.ChoiceField(choices=STOCK_TIME_IN_FORCE, help_text="Options accept day only.")
    auto_sell_enabled = serializers.BooleanField(required=False, default=False, help_text="Let the sell bot manage the position (§6).")

    def to_intent_from(self, a) -> OrderIntent:
        return OrderIntent(
            symbol=a["option_symbol"].strip().upper(), side=a["side"], type=a["type"], time_in_force=a["time_in_force"],
            asset_class=OPTION, qty=a.get("qty"), limit_price=a.get("limit_price"), stop_price=a.get("stop_price"),
            client_order_id=a.get("client_order_id"), auto_sell_enabled=a.get("auto_sell_enabled", False),
        )


class BulkOrderInputSerializer(serializers.Serializer):
    stock = StockOrderInputSerializer(required=False, help_text="A stock order (give exactly one of stock or option).")
    option = OptionOrderInputSerializer(required=False, help_text="An option order (give exactly one of stock or option).")
    account_ids = serializers.ListField(child=serializers.CharField(max_length=64), required=False, allow_empty=False, max_length=1000,
                                        help_text="A subset of accounts; default: every enabled account.")
    account_id = serializers.CharField(required=False, max_length=64, help_text="One account (query or body): the same as account_ids=[account_id].")

    def validate(self, attrs):
        if ("stock" in attrs) == ("option" in attrs):
            raise serializers.ValidationError({"order": "Give exactly one of stock or option."})
        return attrs

    @property
    def intent(self) -> OrderIntent:
        which = "stock" if "stock" in self.validated_data else "option"
        return self.fields[which].to_intent_from(self.validated_data[which])


class QuickOrderQuerySerializer(serializers.Serializer):
    qty = StrictDecimalField(min_value=0, **QTY)
    account_id = serializers.CharField(required=False, max_length=64)
    client_order_id = serializers.CharField(required=False, max_length=48, min_length=1)


# --- order outputs -------------------------------------------------------------------------------


class BalanceCheckSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=balance.STATUSES)
    cash = serializers.CharField(allow_null=True)
    minimum_balance = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=["snapshot", "live"], allow_null=True)
    age_seconds = serializers.FloatField(allow_null=True)
    fallback = serializers.BooleanField(required=False)
    reducing_sell = serializers.BooleanField(required=False)
    fetch_error = serializers.CharField(required=False)


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


class OrderSerializer(serializers.Serializer):
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


class PlacedOrderSerializer(OrderSerializer):
    account = AccountRefSerializer()
    source = serializers.ChoiceField(choices=["api", "bulk", "sellbot"])
    checks = ChecksSerializer()
    timing = TimingSerializer()
    replayed = serializers.BooleanField()
    recovered = serializers.BooleanField(required=False, help_text="Found at the broker by client_order_id after an earlier fault.")


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


class BulkSummarySerializer(serializers.Serializer):
    accounts = serializers.IntegerField()
    accepted = serializers.IntegerField()
    not_accepted = serializers.IntegerField()


class BulkResultSerializer(serializers.Serializer):
    client_order_id = serializers.CharField(help_text="The client_order_id used on every account (generated once when the order "
                                            "gave none): retry the bulk with it to replay instead of placing again.")
    results = BulkResultItemSerializer(many=True)
    summary = BulkSummarySerializer()


# --- account, positions ---------------------------------------------------------------------


class AccountSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    account_number = serializers.CharField()
    type = serializers.ChoiceField(choices=["paper", "live"])
    type_source = serializers.CharField()
    status = serializers.CharField()
    currency = serializers.CharField()
    cash = serializers.CharField()
    buying_power = serializers.CharField()
    equity = serializers.CharField()


class PositionSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    asset_class = serializers.CharField()
    side = serializers.CharField()
    qty = serializers.CharField()
    qty_available = serializers.CharField()
    multiplier = serializers.IntegerField()
    avg_entry_price = serializers.CharField()
    current_price = serializers.CharField(allow_null=True)
    market_value = serializers.CharField(allow_null=True)
    cost_basis = serializers.CharField()
    unrealized_pl = serializers.CharField(allow_null=True)
    unrealized_plpc = serializers.CharField(allow_null=True)


class PositionListSerializer(serializers.Serializer):
    account = AccountRefSerializer()
    positions = PositionSerializer(many=True)


# --- market data -----------------------------------------------------------------------------


class QuoteSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    bid = serializers.CharField(allow_null=True)
    ask = serializers.CharField(allow_null=True)
    bid_size = serializers.CharField(allow_null=True)
    ask_size = serializers.CharField(allow_null=True)
    timestamp = IsoDateTimeField(allow_null=True)
    source = serializers.ChoiceField(choices=["stream", "rest"], help_text="stream: the hub's last-value cache; rest: Alpaca.")
    age_ms = serializers.IntegerField(allow_null=True, help_text="stream: ms since the hub received it; rest: ms since its exchange timestamp.")


class QuoteResultSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    quote = QuoteSerializer(required=False)
    error = ErrorDetailSerializer(required=False)


class QuoteBatchResultSerializer(serializers.Serializer):
    results = QuoteResultSerializer(many=True)


class StockQuotesBatchInputSerializer(serializers.Serializer):
    symbols = serializers.ListField(child=serializers.CharField(max_length=16), allow_empty=False)
    account_id = serializers.CharField(required=False, max_length=64)
    routing_key = serializers.CharField(required=False, max_length=128)


class OptionQuotesBatchInputSerializer(serializers.Serializer):
    option_symbols = serializers.ListField(child=serializers.CharField(max_length=32), allow_empty=False)
    account_id = serializers.CharField(required=False, max_length=64)
    routing_key = serializers.CharField(required=False, max_length=128)


class MarketRoutingQuerySerializer(serializers.Serializer):
    account_id = serializers.CharField(required=False, max_length=64, help_text="Serve with this account's credentials.")
    routing_key = serializers.CharField(required=False, max_length=128, help_text="Stable account choice by rendezvous hash.")


BARS_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # before any market data Alpaca serves; checked before the broker is asked


class BarsQuerySerializer(MarketRoutingQuerySerializer):
    timeframe = serializers.ChoiceField(choices=tuple(TIMEFRAMES), default="1Day")
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)

    def validate(self, attrs):
        earliest, latest = BARS_EARLIEST, datetime.now(UTC) + timedelta(days=1)
        for name in ("start", "end"):
            if attrs.get(name) and not earliest <= attrs[name] <= latest:
                raise serializers.ValidationError({name: f"{name} must lie between {earliest:%Y-%m-%d} and tomorrow."})
        if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": "start must not be after end."})
        return attrs


class BarSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    open = serializers.CharField()
    high = serializers.CharField()
    low = serializers.CharField()
    close = serializers.CharField()
    volume = serializers.CharField()
    trade_count = serializers.IntegerField(allow_null=True)
    vwap = serializers.CharField(allow_null=True)


class BarsSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    bars = BarSerializer(many=True)


class ChainQuerySerializer(MarketRoutingQuerySerializer):
    expiration_date = serializers.DateField(required=False)
    type = serializers.ChoiceField(choices=["call", "put"], required=False)


class OptionContractSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    underlying = serializers.CharField()
    expiration_date = serializers.DateField()
    type = serializers.CharField()
    strike = serializers.CharField()
    quote = QuoteSerializer(allow_null=True)
    implied_volatility = serializers.CharField(allow_null=True)
    greeks = serializers.DictField(child=serializers.CharField(), allow_null=True)


class ChainSerializer(serializers.Serializer):
    underlying = serializers.CharField()
    contracts = OptionContractSerializer(many=True)


class OrdersQuerySerializer(serializers.Serializer):
    account_id = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(choices=["open", "closed", "all"], default="open")
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)


class AccountQuerySerializer(serializers.Serializer):
    account_id = serializers.CharField(required=False, max_length=64)

"""Request and response serializers of the trading API: inputs validate; outputs define the response shapes.
The order outputs (order, order intent, timing, account reference, placement, bulk) are in
trading/serializers_out.py; the order, order intent, quote, timing and account-reference shapes are rendered from
them by trading/formatting.py."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rest_framework import serializers

from accounts.broker import TIMEFRAMES
from opitios.serializers import ErrorDetailSerializer, ErrorResponseSerializer, FieldsOncePerThread, IsoDateTimeField  # noqa: F401 - re-exported for the views

from .fields import StrictDecimalField
from .intents import (
    OPTION,
    ORDER_CLASSES,
    ORDER_TYPES,
    SIDES,
    STOCK,
    STOCK_ORDER_TYPES,
    STOCK_TIME_IN_FORCE,
    OrderIntent,
    client_intent_errors,
    client_order_id_error,
)
from .serializers_out import AccountRefSerializer

MONEY = {"max_digits": 20, "decimal_places": 6, "coerce_to_string": True}
QTY = {"max_digits": 20, "decimal_places": 9, "coerce_to_string": True}


# --- order inputs -----------------------------------------------------------------------------


class _OrderInputBase(FieldsOncePerThread, serializers.Serializer):
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


class TakeProfitInputSerializer(serializers.Serializer):
    limit_price = StrictDecimalField(min_value=0, **MONEY, help_text="The take-profit leg's limit price.")


class StopLossInputSerializer(serializers.Serializer):
    stop_price = StrictDecimalField(min_value=0, **MONEY, help_text="The stop-loss leg's stop price.")
    limit_price = StrictDecimalField(required=False, allow_null=True, min_value=0, **MONEY,
                                     help_text="Makes the stop-loss a stop-limit order; a stop (market) order without it.")


class StockOrderInputSerializer(_OrderInputBase):
    symbol = serializers.CharField(max_length=16, help_text="Stock symbol, e.g. AAPL.")
    type = serializers.ChoiceField(choices=STOCK_ORDER_TYPES)
    qty = StrictDecimalField(required=False, allow_null=True, min_value=0, **QTY)
    notional = StrictDecimalField(required=False, allow_null=True, min_value=0, max_digits=20, decimal_places=2, coerce_to_string=True)
    time_in_force = serializers.ChoiceField(choices=STOCK_TIME_IN_FORCE, help_text="Sent to Alpaca as given.")
    extended_hours = serializers.BooleanField(required=False, default=False)
    order_class = serializers.ChoiceField(choices=ORDER_CLASSES, required=False, default="simple", help_text="bracket, oco, oto: with take_profit / stop_loss legs.")
    take_profit = TakeProfitInputSerializer(required=False, allow_null=True)
    stop_loss = StopLossInputSerializer(required=False, allow_null=True)
    trail_price = StrictDecimalField(required=False, allow_null=True, min_value=0, **MONEY, help_text="trailing_stop: the trail in $.")
    trail_percent = StrictDecimalField(required=False, allow_null=True, min_value=0, max_digits=9, decimal_places=4, coerce_to_string=True,
                                       help_text="trailing_stop: the trail in % (give one of trail_price, trail_percent).")

    def to_intent_from(self, a) -> OrderIntent:
        tp, sl = a.get("take_profit") or {}, a.get("stop_loss") or {}
        order_class = a.get("order_class") or "simple"
        limit_price = a.get("limit_price")
        if order_class == "oco" and limit_price is None:
            limit_price = tp.get("limit_price")  # an oco's limit is its take-profit
        return OrderIntent(
            symbol=a["symbol"].strip().upper(), side=a["side"], type=a["type"], time_in_force=a["time_in_force"],
            asset_class=STOCK, qty=a.get("qty"), notional=a.get("notional"), limit_price=limit_price,
            stop_price=a.get("stop_price"), extended_hours=a.get("extended_hours", False), client_order_id=a.get("client_order_id"),
            order_class=order_class, take_profit_limit_price=tp.get("limit_price"), stop_loss_stop_price=sl.get("stop_price"),
            stop_loss_limit_price=sl.get("limit_price"), trail_price=a.get("trail_price"), trail_percent=a.get("trail_percent"),
        )


class OrderReplaceInputSerializer(FieldsOncePerThread, serializers.Serializer):
    qty = StrictDecimalField(required=False, allow_null=True, min_value=0, **QTY, help_text="The new quantity (whole shares).")
    limit_price = StrictDecimalField(required=False, allow_null=True, min_value=0, **MONEY, help_text="limit and stop_limit orders.")
    stop_price = StrictDecimalField(required=False, allow_null=True, min_value=0, **MONEY, help_text="stop and stop_limit orders.")
    trail = StrictDecimalField(required=False, allow_null=True, min_value=0, **MONEY,
                               help_text="trailing_stop orders: the new trail_price or trail_percent, whichever the order has.")
    time_in_force = serializers.ChoiceField(choices=STOCK_TIME_IN_FORCE, required=False, allow_null=True)
    client_order_id = serializers.CharField(required=False, allow_null=True, max_length=48, min_length=1,
                                            help_text="The replacement's idempotency key (≤ 48 characters). Generated when absent.")
    account_id = serializers.CharField(required=False, max_length=64, help_text="The account; defaults to the token's account_id claim.")

    def validate_client_order_id(self, value):
        if message := client_order_id_error(value):
            raise serializers.ValidationError(message)
        return value


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


class BulkOrderInputSerializer(FieldsOncePerThread, serializers.Serializer):
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


class QuickOrderQuerySerializer(FieldsOncePerThread, serializers.Serializer):
    qty = StrictDecimalField(min_value=0, **QTY)
    account_id = serializers.CharField(required=False, max_length=64)
    client_order_id = serializers.CharField(required=False, max_length=48, min_length=1)


# --- account, positions ---------------------------------------------------------------------


# Rendered from {"account": AlpacaAccount, "info": AccountInfo} (trading/formatting.py, account_json).
class AccountSerializer(serializers.Serializer):
    id = serializers.CharField(source="account.account_id")
    name = serializers.CharField(source="account.name", allow_blank=True)
    account_number = serializers.CharField(source="info.account_number")
    type = serializers.ChoiceField(source="account.account_type", choices=["paper", "live"])
    type_source = serializers.CharField(source="account.type_source")
    status = serializers.CharField(source="info.status")
    currency = serializers.CharField(source="info.currency")
    cash = serializers.CharField(source="info.cash")
    buying_power = serializers.CharField(source="info.buying_power")
    equity = serializers.CharField(source="info.equity")


# Rendered from a PositionValue (trading/formatting.py): the broker's position and the P/L computed from it.
class PositionSerializer(serializers.Serializer):
    symbol = serializers.CharField(source="position.symbol")
    asset_class = serializers.CharField(source="position.asset_class")
    side = serializers.CharField(source="position.side")
    qty = serializers.CharField(source="position.qty")
    qty_available = serializers.CharField(source="position.qty_available")
    multiplier = serializers.IntegerField()
    avg_entry_price = serializers.CharField(source="position.avg_entry_price")
    current_price = serializers.CharField(source="position.current_price", allow_null=True)
    market_value = serializers.CharField(allow_null=True)
    cost_basis = serializers.CharField()
    unrealized_pl = serializers.CharField(allow_null=True)
    unrealized_plpc = serializers.CharField(allow_null=True)


class PositionListSerializer(serializers.Serializer):
    account = AccountRefSerializer()
    positions = PositionSerializer(many=True)


# --- market data -----------------------------------------------------------------------------


# A quote as the broker gives it (an option contract's quote in a chain); QuoteSerializer adds where it came from.
class QuoteFieldsSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    bid = serializers.CharField(allow_null=True)
    ask = serializers.CharField(allow_null=True)
    bid_size = serializers.CharField(allow_null=True)
    ask_size = serializers.CharField(allow_null=True)
    timestamp = IsoDateTimeField(allow_null=True)


class QuoteSerializer(QuoteFieldsSerializer):
    source = serializers.ChoiceField(choices=["stream", "rest"], help_text="stream: the hub's last-value cache; rest: Alpaca.")
    age_ms = serializers.IntegerField(allow_null=True, help_text="stream: ms since the hub received it; rest: ms since its exchange timestamp.")


class QuoteResultSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    quote = QuoteSerializer(required=False)
    error = ErrorDetailSerializer(required=False)

    class Meta:
        omit_none = ("quote", "error")


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
    timestamp = IsoDateTimeField()
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


class GreeksField(serializers.DictField):
    """The greeks the upstream gave (a missing one is left out); ``null`` when it gave none."""

    child = serializers.CharField()

    def to_representation(self, value):
        return {str(k): str(v) for k, v in value.items() if v is not None} if value else None


# Rendered from {"contract": OptionContractQuote, "occ": occ_parse(symbol)} (trading/formatting.py).
class OptionContractSerializer(serializers.Serializer):
    symbol = serializers.CharField(source="contract.symbol")
    underlying = serializers.CharField(source="occ.root")
    expiration_date = serializers.DateField(source="occ.expiration")
    type = serializers.CharField(source="occ.type")
    strike = serializers.CharField(source="occ.strike")
    quote = QuoteFieldsSerializer(source="contract.quote", allow_null=True)
    implied_volatility = serializers.CharField(source="contract.implied_volatility", allow_null=True)
    greeks = GreeksField(source="contract.greeks", allow_null=True)


class ChainSerializer(serializers.Serializer):
    underlying = serializers.CharField()
    contracts = OptionContractSerializer(many=True)


class OrdersQuerySerializer(serializers.Serializer):
    account_id = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(choices=["open", "closed", "all"], default="open")
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)


class AccountQuerySerializer(serializers.Serializer):
    account_id = serializers.CharField(required=False, max_length=64)

"""JSON shapes of the broker contract's dataclasses and the pipeline's values in API responses: each is its
output serializer's shape, rendered by ``lean_renderer`` without a Serializer per call."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from accounts.broker import AccountInfo, Bar, BrokerOrder, OptionContractQuote, Position, Quote
from opitios.serializers import lean_renderer

from .balance import BalanceCheck
from .closing_serializers import (
    CancelAllSerializer,
    CancelItemSerializer,
    CloseAllSerializer,
    CloseItemSerializer,
    FlattenAccountSerializer,
    FlattenSerializer,
)
from .intents import OPTION, OPTION_MULTIPLIER, OrderIntent, occ_parse
from .serializers import (
    AccountSerializer,
    BarSerializer,
    BarsSerializer,
    ChainSerializer,
    OptionContractSerializer,
    PositionListSerializer,
    PositionSerializer,
    QuoteBatchResultSerializer,
    QuoteFieldsSerializer,
    QuoteResultSerializer,
)
from .serializers_out import (
    AccountRefSerializer,
    BalanceCheckSerializer,
    BulkResultItemSerializer,
    BulkResultSerializer,
    CancelResultSerializer,
    OrderIntentSerializer,
    OrderListSerializer,
    OrderSerializer,
    PlacedOrderSerializer,
    TimingSerializer,
)

quote_json: Callable[[Quote], dict] = lean_renderer(QuoteFieldsSerializer)
broker_order_json: Callable[[BrokerOrder], dict] = lean_renderer(OrderSerializer)
account_ref_json: Callable[[object], dict] = lean_renderer(AccountRefSerializer)
timing_json: Callable[[object], dict] = lean_renderer(TimingSerializer)
intent_json: Callable[[OrderIntent], dict] = lean_renderer(OrderIntentSerializer)
bar_json: Callable[[Bar], dict] = lean_renderer(BarSerializer)
balance_check_json: Callable[[BalanceCheck], dict] = lean_renderer(BalanceCheckSerializer)
# A placed order is the order's shape and the placement's own fields (account, source, checks, timing, replayed).
_placement_fields_json = lean_renderer(PlacedOrderSerializer, exclude=tuple(OrderSerializer().fields),
                                       prerendered=("account", "checks", "timing"))


def placed_order_json(order: BrokerOrder, **placement) -> dict:
    """The answer to an accepted order: ``placement`` holds account, source, checks, timing, replayed (and
    recovered), the first three rendered already."""
    return {**broker_order_json(order), **_placement_fields_json(placement)}


# Rows and answers of the multi-order operations: their rows, and the orders and errors in them, are rendered already.
bulk_item_json = lean_renderer(BulkResultItemSerializer, prerendered=("order", "error"))
bulk_json = lean_renderer(BulkResultSerializer, prerendered=("results",))
cancel_result_json = lean_renderer(CancelResultSerializer)
cancel_item_json = lean_renderer(CancelItemSerializer, prerendered=("error",))
cancel_all_json = lean_renderer(CancelAllSerializer, prerendered=("results",))
close_item_json = lean_renderer(CloseItemSerializer, prerendered=("order", "error"))
close_all_json = lean_renderer(CloseAllSerializer, prerendered=("results",))
flatten_item_json = lean_renderer(FlattenAccountSerializer, prerendered=("cancels", "closes", "error"))
flatten_json = lean_renderer(FlattenSerializer, prerendered=("results",))
# Lists: their items are rendered already (each by its own renderer above or below).
bars_json = lean_renderer(BarsSerializer, prerendered=("bars",))
chain_json = lean_renderer(ChainSerializer, prerendered=("contracts",))
order_list_json = lean_renderer(OrderListSerializer, prerendered=("orders",))
position_list_json = lean_renderer(PositionListSerializer, prerendered=("positions",))
quote_result_json = lean_renderer(QuoteResultSerializer, prerendered=("quote", "error"))
quote_batch_json = lean_renderer(QuoteBatchResultSerializer, prerendered=("results",))
_account_json = lean_renderer(AccountSerializer)
_contract_json = lean_renderer(OptionContractSerializer)
_position_json = lean_renderer(PositionSerializer)


def account_json(account, info: AccountInfo) -> dict:
    return _account_json({"account": account, "info": info})


def contract_json(c: OptionContractQuote) -> dict | None:
    """``None`` for a symbol that is not a compact OCC option symbol (left out of the chain)."""
    parts = occ_parse(c.symbol)
    return None if parts is None else _contract_json({"contract": c, "occ": parts})


@dataclass(frozen=True)
class PositionValue:
    """A position with its P/L computed here with the contract multiplier (x100 for options), whatever the
    upstream sent; amounts to the cent, the P/L ratio to 6 places."""

    position: Position
    multiplier: int
    cost_basis: Decimal
    market_value: Decimal | None
    unrealized_pl: Decimal | None
    unrealized_plpc: Decimal | None


_CENT = Decimal("0.01")


def position_value(p: Position) -> PositionValue:
    mult = OPTION_MULTIPLIER if p.asset_class == OPTION or occ_parse(p.symbol) else Decimal(1)
    cost_basis = p.avg_entry_price * p.qty * mult
    market_value = None if p.current_price is None else p.current_price * p.qty * mult
    pl = None if market_value is None else market_value - cost_basis
    plpc = None if pl is None or cost_basis == 0 else pl / abs(cost_basis)
    return PositionValue(
        position=p, multiplier=int(mult), cost_basis=cost_basis.quantize(_CENT),
        market_value=None if market_value is None else market_value.quantize(_CENT),
        unrealized_pl=None if pl is None else pl.quantize(_CENT),
        unrealized_plpc=None if plpc is None else plpc.quantize(Decimal("0.000001")),
    )


def position_json(p: Position) -> dict:
    return _position_json(position_value(p))

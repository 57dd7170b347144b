"""Orders: stock, option, quick, list, detail, replace, cancel and bulk. Every placement (a replacement
too, through ``replace.order_replace``) goes through ``services.order_place``."""
from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from accounts import broker as broker_seam
from accounts.models import AlpacaAccount
from opitios.auth import token_user_id
from opitios.errors import ApplicationError

from ..errors import placement_response
from ..formatting import order_list_json
from ..intents import STOCK, OrderIntent, client_intent_errors
from ..models import Source
from ..permissions import HasAccountAccess, HasBulkTrading, HasTrading
from ..replace import order_replace
from ..selectors import account_readable, requested_account_id
from ..serializers import (
    AccountQuerySerializer,
    BulkOrderInputSerializer,
    OptionOrderInputSerializer,
    OrderReplaceInputSerializer,
    OrdersQuerySerializer,
    QuickOrderQuerySerializer,
    StockOrderInputSerializer,
)
from ..serializers_out import (
    BulkResultSerializer,
    CancelResultSerializer,
    OrderListSerializer,
    OrderSerializer,
    PlacedOrderSerializer,
)
from ..services import broker_order_json, order_cancel, order_place, orders_bulk_place
from .base import ACCOUNT_ERRORS, ORDER_ERRORS, TradingAPIView
from .manage import CANCEL_ALL_SCHEMA, cancel_all

TAGS = ["orders"]


def _respond(placement) -> Response:
    status, body, headers = placement_response(placement)
    return Response(body, status=status, headers=headers)


class _PlaceOrderView(TradingAPIView):
    permission_classes = [HasTrading]
    timed = True
    prepay_budget = True
    input_serializer = StockOrderInputSerializer

    def post(self, request):
        s = self.input_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        account = self.resolve_account(request)
        result = order_place(account=account, intent=s.intent, source=Source.API, user_id=token_user_id(request),
                             received_at=request.received_at)
        return _respond(result)


class StockOrderView(_PlaceOrderView):
    throttle_scope = "stock_order"
    input_serializer = StockOrderInputSerializer

    @extend_schema(tags=TAGS, summary="Place a stock order", request=StockOrderInputSerializer,
                   responses={201: PlacedOrderSerializer, 200: PlacedOrderSerializer, **ORDER_ERRORS},
                   description="201 for a new order; 200 with replayed=true when the client_order_id was seen before.")
    def post(self, request):
        return super().post(request)


class OptionOrderView(_PlaceOrderView):
    throttle_scope = "option_order"
    input_serializer = OptionOrderInputSerializer

    @extend_schema(tags=TAGS, summary="Place an option order (OCC symbol, whole contracts, day only)", request=OptionOrderInputSerializer,
                   responses={201: PlacedOrderSerializer, 200: PlacedOrderSerializer, **ORDER_ERRORS})
    def post(self, request):
        return super().post(request)


class QuickOrderView(TradingAPIView):
    permission_classes = [HasTrading]
    timed = True
    prepay_budget = True
    throttle_scope = "stock_order"
    side = "buy"

    @extend_schema(tags=TAGS, summary="Quick market order (day)", request=None, parameters=[QuickOrderQuerySerializer],
                   responses={201: PlacedOrderSerializer, 200: PlacedOrderSerializer, **ORDER_ERRORS})
    def post(self, request, symbol: str):
        q = QuickOrderQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        d = q.validated_data
        intent = OrderIntent(symbol=symbol.strip().upper(), side=self.side, type="market", time_in_force="day", asset_class=STOCK,
                             qty=d["qty"], client_order_id=d.get("client_order_id"))
        errors = client_intent_errors(intent)
        if errors:
            raise ApplicationError("invalid_order", next(iter(errors.values())), details={"fields": errors})
        account = self.resolve_account(request)
        return _respond(order_place(account=account, intent=intent, source=Source.API, user_id=token_user_id(request),
                                    received_at=request.received_at))


class QuickBuyView(QuickOrderView):
    side = "buy"


class QuickSellView(QuickOrderView):
    side = "sell"


def _order_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApplicationError("invalid_order_id", f"{value!r} is not an order id (a UUID).") from None


class OrdersView(TradingAPIView):
    def get_permissions(self):
        return [HasTrading()] if self.request.method == "DELETE" else [HasAccountAccess()]

    @CANCEL_ALL_SCHEMA
    def delete(self, request):
        return cancel_all(self, request)

    @extend_schema(tags=TAGS, summary="The account's orders", parameters=[OrdersQuerySerializer],
                   responses={200: OrderListSerializer, **ACCOUNT_ERRORS})
    def get(self, request):
        q = OrdersQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        d = q.validated_data
        account = account_readable(self.resolve_account(request))
        orders = broker_seam.broker_for(account).list_orders(status=d["status"], limit=d["limit"])
        return Response(order_list_json({"account": account, "orders": [broker_order_json(o) for o in orders]}))


class OrderDetailView(TradingAPIView):
    # A replacement (PATCH) is an order: timed, counted against the order rate and the account's upstream budget.
    @property
    def timed(self) -> bool:
        return self.request.method == "PATCH"

    @property
    def prepay_budget(self) -> bool:
        return self.request.method == "PATCH"

    @property
    def throttle_scope(self) -> str:
        return "stock_order" if self.request.method == "PATCH" else "default"

    def get_permissions(self):
        return [HasTrading()] if self.request.method in ("DELETE", "PATCH") else [HasAccountAccess()]

    @extend_schema(tags=TAGS, summary="One order, with its legs (bracket, oco, oto)", operation_id="order_detail",
                   parameters=[AccountQuerySerializer],
                   responses={200: OrderSerializer, **ACCOUNT_ERRORS})
    def get(self, request, order_id: str):
        q = AccountQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        order_id = _order_id(order_id)
        account = account_readable(self.resolve_account(request))
        return Response(broker_order_json(broker_seam.broker_for(account).get_order(order_id)))

    @extend_schema(tags=TAGS, summary="Replace one open order (qty, limit, stop, trail or time in force)", operation_id="order_replace",
                   parameters=[AccountQuerySerializer], request=OrderReplaceInputSerializer,
                   responses={201: PlacedOrderSerializer, 200: PlacedOrderSerializer, **ORDER_ERRORS},
                   description="The replacement is a new order (its own id, client_order_id and record, action=replace, "
                               "linked to the order it replaces); the old order ends replaced. It passes the same pre-trade "
                               "checks as a new order. 201 for a new replacement; 200 with replayed=true when its "
                               "client_order_id was seen before. 404 not_found / 422 broker_rejected when the broker has no such "
                               "order or it can no longer be replaced (filled, canceled, already replaced).")
    def patch(self, request, order_id: str):
        order_id = _order_id(order_id)
        s = OrderReplaceInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        account = self.resolve_account(request)
        d = s.validated_data
        return _respond(order_replace(account=account, order_id=order_id, changes=d, client_order_id=d.get("client_order_id"),
                                      user_id=token_user_id(request), received_at=request.received_at))

    @extend_schema(tags=TAGS, summary="Cancel one order", parameters=[AccountQuerySerializer],
                   responses={200: CancelResultSerializer, **ACCOUNT_ERRORS})
    def delete(self, request, order_id: str):
        q = AccountQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        order_id = _order_id(order_id)
        account = account_readable(self.resolve_account(request))
        return Response(order_cancel(account=account, order_id=order_id, user_id=token_user_id(request)))


class BulkOrderView(TradingAPIView):
    timed = True
    permission_classes = [HasBulkTrading]
    throttle_scope = "bulk_order"

    @extend_schema(tags=TAGS, summary="The same order on every enabled account or a listed subset, concurrently",
                   request=BulkOrderInputSerializer, responses={200: BulkResultSerializer, **ORDER_ERRORS})
    def post(self, request):
        s = BulkOrderInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        ids = s.validated_data.get("account_ids")
        named = requested_account_id(request)
        if named is not None:
            # account_id (query or body) is shorthand for a one-account subset; it must agree with account_ids
            if ids and set(ids) != {named}:
                raise ApplicationError("account_id_conflict", f"account_id names {named} but account_ids lists {', '.join(ids[:20])}.",
                                       details={"account_id": named, "account_ids": ids[:20]})
            ids = [named]
        if ids:
            ids = list(dict.fromkeys(ids))
            accounts = list(AlpacaAccount.objects.filter(account_id__in=ids))
            missing = sorted(set(ids) - {a.account_id for a in accounts})
            if missing:
                raise ApplicationError("account_not_found", f"Unknown account(s): {', '.join(missing[:20])}.",
                                       details={"missing": missing})
        else:
            accounts = list(AlpacaAccount.objects.filter(enabled=True))
        return Response(orders_bulk_place(accounts=accounts, intent=s.intent, user_id=token_user_id(request),
                                          received_at=request.received_at))

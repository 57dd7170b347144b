"""Order management (docs/api.md, "Order management"): cancel all, close positions, flatten.
Services in ``trading/closing.py``."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts.models import AlpacaAccount
from opitios.auth import token_user_id
from opitios.errors import ApplicationError
from opitios.permissions import IsAdmin

from ..closing import accounts_flatten, orders_cancel_all, position_close, positions_close_all
from ..closing_serializers import (
    CancelAllSerializer,
    CloseAllSerializer,
    ClosePositionQuerySerializer,
    FlattenInSerializer,
    FlattenSerializer,
)
from ..errors import placement_response
from ..permissions import HasTrading
from ..selectors import account_readable
from ..serializers import AccountQuerySerializer, ErrorResponseSerializer
from ..serializers_out import PlacedOrderSerializer
from .base import ACCOUNT_ERRORS, COMMON_ERRORS, ORDER_ERRORS, TradingAPIView

TAGS = ["orders"]
CLOSE_ERRORS = {
    **ORDER_ERRORS,
    404: OpenApiResponse(ErrorResponseSerializer, description="No such account or position (account_not_found, position_not_found)."),
    422: OpenApiResponse(ErrorResponseSerializer, description="Refused by a rule: trading_halted, reduce_only, symbol_restricted, "
                         "open_order_limit, price_collar, close_qty_exceeds_position, close_qty_too_small, insufficient_balance, "
                         "account_type_mismatch, account_disabled, broker_rejected, ..."),
    429: OpenApiResponse(ErrorResponseSerializer, description="rate_limited, upstream_rate_limited or order_rate_exceeded "
                         "(trading.max_orders_per_second); carries Retry-After."),
}


def cancel_all(view: TradingAPIView, request) -> Response:
    """``DELETE /orders``: mounted on the orders list view (same path)."""
    q = AccountQuerySerializer(data=request.query_params)
    q.is_valid(raise_exception=True)
    account = account_readable(view.resolve_account(request))
    return Response(orders_cancel_all(account=account, user_id=token_user_id(request)))


CANCEL_ALL_SCHEMA = extend_schema(tags=TAGS, summary="Cancel every open order of the account", operation_id="orders_cancel_all",
                                  parameters=[AccountQuerySerializer], responses={200: CancelAllSerializer, **ACCOUNT_ERRORS})


def close_all(view: TradingAPIView, request) -> Response:
    """``DELETE /positions``: mounted on the positions view (same path)."""
    q = AccountQuerySerializer(data=request.query_params)
    q.is_valid(raise_exception=True)
    account = view.resolve_account(request)
    return Response(positions_close_all(account=account, user_id=token_user_id(request), received_at=request.received_at))


CLOSE_ALL_SCHEMA = extend_schema(tags=TAGS, summary="Close every position of the account (a market order each, through the pipeline)",
                                 operation_id="positions_close_all", parameters=[AccountQuerySerializer],
                                 responses={200: CloseAllSerializer, **ACCOUNT_ERRORS})


class PositionCloseView(TradingAPIView):
    permission_classes = [HasTrading]
    timed = True
    throttle_scope = "stock_order"

    @extend_schema(tags=TAGS, summary="Close a position, or qty or percentage of it (a market order through the pipeline)",
                   operation_id="position_close", parameters=[ClosePositionQuerySerializer],
                   responses={201: PlacedOrderSerializer, 200: PlacedOrderSerializer, **CLOSE_ERRORS})
    def delete(self, request, symbol: str):
        q = ClosePositionQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        account = self.resolve_account(request)
        placement = position_close(account=account, symbol=symbol.strip().upper(), user_id=token_user_id(request),
                                   qty=q.validated_data.get("qty"), percentage=q.validated_data.get("percentage"),
                                   received_at=request.received_at)
        status, body, headers = placement_response(placement)
        return Response(body, status=status, headers=headers)


class FlattenView(TradingAPIView):
    permission_classes = [IsAdmin]
    timed = True

    @extend_schema(
        tags=["admin"], summary="Flatten accounts: set reducing, cancel open orders, close positions (admin)", operation_id="admin_flatten",
        request=FlattenInSerializer,
        description="Per-account results; an account whose broker fails says so and the others complete. Retry with the answer's "
        "flatten_id: closes already sent replay instead of selling twice. Audited (risk.flatten, risk.state_changed, order.*).",
        responses={200: FlattenSerializer, **COMMON_ERRORS,
                   403: OpenApiResponse(ErrorResponseSerializer, description="The token lacks the admin permission (permission_denied)."),
                   404: OpenApiResponse(ErrorResponseSerializer, description="Unknown account(s) (account_not_found).")},
    )
    def post(self, request):
        s = FlattenInSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        if d.get("all"):
            accounts = list(AlpacaAccount.objects.filter(enabled=True))
        else:
            ids = list(dict.fromkeys(d["account_ids"]))
            accounts = list(AlpacaAccount.objects.filter(account_id__in=ids))
            missing = sorted(set(ids) - {a.account_id for a in accounts})
            if missing:
                raise ApplicationError("account_not_found", f"Unknown account(s): {', '.join(missing[:20])}.",
                                       details={"missing": missing[:100]})
        return Response(accounts_flatten(accounts=accounts, reason=d["reason"], user_id=token_user_id(request),
                                         flatten_id=d.get("flatten_id")))

"""Account data: the account and its positions, for the token's own account unless admin."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from accounts import broker as broker_seam

from ..formatting import account_json, position_json, position_list_json
from ..permissions import HasAccountAccess, HasTrading
from ..selectors import account_readable
from ..serializers import AccountQuerySerializer, AccountSerializer, PositionListSerializer
from .base import ACCOUNT_ERRORS, TradingAPIView
from .manage import CLOSE_ALL_SCHEMA, close_all

TAGS = ["account"]


class AccountView(TradingAPIView):
    permission_classes = [HasAccountAccess]

    @extend_schema(tags=TAGS, summary="Account number and type, cash, buying power, equity, status",
                   parameters=[AccountQuerySerializer], responses={200: AccountSerializer, **ACCOUNT_ERRORS})
    def get(self, request):
        q = AccountQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        account = account_readable(self.resolve_account(request))
        return Response(account_json(account, broker_seam.broker_for(account).get_account()))


class PositionsView(TradingAPIView):
    def get_permissions(self):
        return [HasTrading()] if self.request.method == "DELETE" else [HasAccountAccess()]

    @CLOSE_ALL_SCHEMA
    def delete(self, request):
        return close_all(self, request)

    @extend_schema(tags=TAGS, summary="Positions with unrealized P/L (options x100)",
                   parameters=[AccountQuerySerializer], responses={200: PositionListSerializer, **ACCOUNT_ERRORS})
    def get(self, request):
        q = AccountQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        account = account_readable(self.resolve_account(request))
        positions = broker_seam.broker_for(account).get_positions()
        return Response(position_list_json({"account": account, "positions": [position_json(p) for p in positions]}))

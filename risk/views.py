"""``/api/v1/admin/trading-state`` (admin): read and set the kill switch."""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AlpacaAccount
from opitios.auth import token_user_id
from opitios.errors import ApplicationError
from opitios.permissions import IsAdmin
from opitios.serializers import ErrorResponseSerializer

from .serializers import (
    TradingStateChangeSerializer,
    TradingStateInSerializer,
    TradingStatesSerializer,
    scope_state_json,
    trading_state_change_json,
    trading_states_json,
)
from .states import trading_state_set, trading_states_list

_ERRORS = {
    400: OpenApiResponse(ErrorResponseSerializer, description="Malformed input (`validation_error`, `malformed_request`): scope, state and a reason are required."),
    401: OpenApiResponse(ErrorResponseSerializer, description="Missing or invalid token (`invalid_token`, `not_authenticated`)."),
    403: OpenApiResponse(ErrorResponseSerializer, description="The token lacks the `admin` permission (`permission_denied`)."),
}


class TradingStateView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="admin_trading_state_list", summary="Trading states (admin)", tags=["admin"],
                   responses={200: TradingStatesSerializer, **_ERRORS})
    def get(self, request):
        return Response(trading_states_json({"states": [scope_state_json(s) for s in trading_states_list()]}))

    @extend_schema(
        operation_id="admin_trading_state_set", summary="Set the global or an account's trading state (admin)", tags=["admin"],
        description="active, reducing (only orders that reduce a position, and cancels) or halted (only cancels). The effective "
        "state of an account is the stricter of global and its own. Audited (risk.state_changed); applies to every process "
        "within 1 s.",
        request=TradingStateInSerializer,
        responses={200: TradingStateChangeSerializer, **_ERRORS,
                   404: OpenApiResponse(ErrorResponseSerializer, description="Unknown account (`account_not_found`).")},
    )
    def post(self, request):
        s = TradingStateInSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        account = None
        if d["scope"] == "account":
            account = AlpacaAccount.objects.filter(account_id=d["account_id"]).first()
            if account is None:
                raise ApplicationError("account_not_found", f"Account {d['account_id']} does not exist.")
        change = trading_state_set(account=account, state=d["state"], reason=d["reason"], actor_type="admin",
                                   actor_id=token_user_id(request))
        return Response(trading_state_change_json({"changed": change.changed, "old": scope_state_json(change.old),
                                                   "new": scope_state_json(change.new)}))

"""The base of every trading API view: receive time, rate-limit headers. Broker errors are rendered by
the single exception handler (opitios/errors.py) through the table in trading/errors.py."""
from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.utils import OpenApiResponse
from rest_framework.views import APIView

from accounts import balance_cache, budget
from opitios.auth import token_account_id
from opitios.permissions import is_admin
from opitios.request_timing import time_request

from ..selectors import account_resolve, requested_account_id
from ..serializers import ErrorResponseSerializer
from ..throttles import ConfiguredScopeThrottle


class TradingAPIView(APIView):
    throttle_classes = [ConfiguredScopeThrottle]
    throttle_scope = "default"
    timed = False  # log request_total_ms for every request of this view (the order routes)
    prepay_budget = False  # the throttle also counts the account's upstream budget (the single-account order routes)

    def initial(self, request, *args, **kwargs):
        # Step 1 of the order flow is stamped by the first middleware (opitios/request_timing.py);
        # the fallback serves a view called without the middleware stack.
        if getattr(request, "received_at", None) is None:
            request.received_at = datetime.now(UTC)
        if self.timed:
            time_request()
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        budget.prepaid_release()  # what the throttle prepaid and no broker call used
        balance_cache.prefetched(None)  # what the throttle read along and no balance check took
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in (getattr(request, "rate_limit", None) or {}).items():
            if name != "Retry-After" or response.status_code == 429:
                response[name] = value
        return response

    def resolve_account(self, request):
        """The account the request names (query or body), checked against the token."""
        return account_resolve(requested_id=requested_account_id(request), token_account_id=token_account_id(request),
                               is_admin=is_admin(request), accounts_version=getattr(request, "accounts_version", None))


def _err(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorResponseSerializer, description=description)


COMMON_ERRORS = {
    400: _err("Malformed input (invalid_request, invalid_order, malformed_request, ...), or account_id_conflict: "
              "the query string and the body name different accounts."),
    401: _err("Missing, invalid or expired token (invalid_token, not_authenticated)."),
    413: _err("The request body is larger than allowed (request_too_large)."),
    429: _err("Our rate limit (rate_limited) or Alpaca's (upstream_rate_limited); carries Retry-After."),
}
BROKER_ERRORS = {
    404: _err("Not found (account_not_found, not_found)."),
    422: _err("Refused by a rule (account_disabled, account_config_invalid, account_type_mismatch, account_type_undetected, account_type_unverified, broker_rejected, ...)."),
    502: _err("Unexpected broker answer (broker_error)."),
    503: _err("Broker unavailable (broker_unavailable)."),
    504: _err("Broker timeout (broker_timeout)."),
}
ACCOUNT_ERRORS = {
    **COMMON_ERRORS,
    403: _err("Permission denied, or another account than the token's own (permission_denied, account_forbidden)."),
    **BROKER_ERRORS,
}
ORDER_ERRORS = {
    **ACCOUNT_ERRORS,
    409: _err("The same client_order_id is being placed concurrently (idempotency_conflict)."),
    422: _err("Refused by a rule: insufficient_balance, account_type_mismatch, account_type_undetected, account_type_unverified, account_disabled, account_config_invalid, broker_rejected."),
    503: _err("broker_unavailable, broker_busy (too many orders in flight; retry with Retry-After), balance_unverified in fail-closed mode, price_unavailable, or database_unavailable."),
}
MARKET_ERRORS = {
    **COMMON_ERRORS,
    403: _err("Market data requires the market_data permission (when api.market_data_public is off)."),
    **BROKER_ERRORS,
}

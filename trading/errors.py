"""The trading app's error table: each refusal code's HTTP status and Retry-After, and the broker's
errors as refusals. Registered into the single exception handler (``opitios/errors.py``) at import;
services and views keep no mapping of their own (docs/architecture.md, "The order pipeline")."""
from __future__ import annotations

from accounts.broker import BrokerError, BrokerNotFound, BrokerRejected, BrokerTimeout, BrokerUnavailable, UpstreamRateLimited
from opitios.errors import ErrorStatus, error_headers, error_status, register_error_statuses, register_error_translator

from .models import Outcome
from .results import Placement, Refusal

# The broker's error classes declare their own code and status (accounts/broker/contract.py).
BROKER_ERRORS = (BrokerError, BrokerUnavailable, BrokerTimeout, UpstreamRateLimited, BrokerRejected, BrokerNotFound)

ERROR_STATUSES: dict[str, ErrorStatus] = {
    **{cls.code: ErrorStatus(cls.http_status) for cls in BROKER_ERRORS},
    # the account may not trade
    "account_disabled": ErrorStatus(422),
    "account_config_invalid": ErrorStatus(422),
    "account_type_mismatch": ErrorStatus(422),
    "account_type_undetected": ErrorStatus(422, retry_after=5),
    "account_type_unverified": ErrorStatus(422),
    # order limits and balance
    "order_limit_exceeded": ErrorStatus(400),
    "price_unavailable": ErrorStatus(503, retry_after=1),
    "insufficient_balance": ErrorStatus(422),
    "balance_unverified": ErrorStatus(503, retry_after=5),
    # the risk controls (trading/pretrade.py, docs/risk.md); order_rate_exceeded's Retry-After is the
    # window's own (details.retry_after_seconds), else 1
    "trading_halted": ErrorStatus(422),
    "reduce_only": ErrorStatus(422),
    "symbol_restricted": ErrorStatus(422),
    "order_rate_exceeded": ErrorStatus(429, retry_after=1),
    "open_order_limit": ErrorStatus(422),
    "price_collar": ErrorStatus(422),
    # the pipeline itself
    "idempotency_conflict": ErrorStatus(409),
    "broker_busy": ErrorStatus(503, retry_after=1),
    "database_unavailable": ErrorStatus(503, retry_after=5),
    "internal_error": ErrorStatus(500),
}
ACCEPTED_STATUS = 201

register_error_statuses(ERROR_STATUSES)


def broker_error_parts(exc: BrokerError) -> tuple[str, str, dict]:
    """A broker error as (code, message, details); its Retry-After travels as ``retry_after_seconds``."""
    details: dict = {}
    if exc.retry_after:
        details["retry_after_seconds"] = exc.retry_after
    if exc.upstream_code:
        details["upstream_code"] = exc.upstream_code
    return exc.code, exc.message or exc.code, details


register_error_translator(BrokerError, broker_error_parts)


def _broker_refusal(exc: BrokerError) -> tuple[str, Refusal]:
    """The outcome (rejected when the broker refused the order or does not know it, failed otherwise) and the refusal."""
    outcome = Outcome.REJECTED if isinstance(exc, (BrokerRejected, BrokerNotFound)) else Outcome.FAILED
    return outcome, Refusal(*broker_error_parts(exc))


def refusal_status(refusal: Refusal | None) -> int:
    """The HTTP status an attempt is answered (and recorded) with."""
    return ACCEPTED_STATUS if refusal is None else error_status(refusal.code, default=500)


def placement_response(placement: Placement) -> tuple[int, dict, dict]:
    """(status, body, headers) of a placement. A replay answers the stored status and body, marked replayed."""
    if placement.replayed:
        return placement.record.http_status or 200, placement.body, {"Idempotent-Replayed": "true"}
    if placement.refusal is None:
        return ACCEPTED_STATUS, placement.body, {}
    return refusal_status(placement.refusal), placement.body, error_headers(placement.refusal.code, placement.refusal.details)

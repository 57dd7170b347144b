"""The trading app's side of the error table (``opitios/errors.py``, ``ERROR_STATUSES``): the broker's
errors as error parts and refusals, and a placement's HTTP answer. Services and views keep no mapping of
their own (docs/architecture.md, "The order pipeline")."""
from __future__ import annotations

from accounts.broker import BrokerError, BrokerNotFound, BrokerRejected
from opitios.errors import error_headers, error_response_parts, error_status, exception_error, register_error_translator

from .models import Outcome
from .results import Placement, Refusal

ACCEPTED_STATUS = 201


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


def placement_item(placement: Placement) -> dict:
    """A placement as one row of a multi-order answer (bulk, close-all): its status, and its order (accepted,
    or the stored answer of a replay) or its error."""
    status, body, _ = placement_response(placement)
    return {"status_code": status, "order": body} if status < 400 else {"status_code": status, "error": body["error"]}


def exception_item(exc: BaseException) -> dict:
    """An exception as one row of a multi-order answer: what the single handler would answer, an unexpected
    one as ``internal_error`` naming its class (the row's neighbours still complete)."""
    status, body, _ = exception_error(exc) or error_response_parts("internal_error", f"Unexpected failure ({exc.__class__.__name__}).")
    return {"status_code": status, "error": body["error"]}

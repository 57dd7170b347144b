"""``ApplicationError``, the error table and the single DRF exception handler.

Every error response has the body ``{"error": {"code", "message", "details"}}``, rendered from its
serializer (``opitios/serializers.py``, ``ErrorResponseSerializer``).

``ERROR_STATUSES`` is the one table of HTTP statuses and ``Retry-After``: every error code any app raises,
refuses or translates is answered from it (docs/architecture.md, "The order pipeline"). Exceptions of a
lower layer that carry a code (the broker's errors) are turned into one by ``register_error_translator``.
Services return or raise codes; only this module turns them into HTTP.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from .serializers import ErrorDetailSerializer, ErrorResponseSerializer, lean_renderer

logger = logging.getLogger("opitios.errors")


@dataclass(frozen=True)
class ErrorStatus:
    """How an error code is answered: its HTTP status, and a Retry-After (seconds) it always carries."""

    status: int
    retry_after: int | None = None


ERROR_STATUSES: dict[str, ErrorStatus] = {
    # the request itself, as the gateway answers it outside DRF's exceptions (Django's handlers, /metrics,
    # ApplicationError); a DRF exception keeps the status DRF gives it (_DRF_CODES below: an authentication
    # failure is 403, not 401, on a view that names no authentication scheme)
    "malformed_request": ErrorStatus(400),
    "invalid_request": ErrorStatus(400),
    "validation_error": ErrorStatus(400),
    "not_authenticated": ErrorStatus(401),
    "permission_denied": ErrorStatus(403),
    "not_found": ErrorStatus(404),
    "request_too_large": ErrorStatus(413),
    # the account a request names
    "account_required": ErrorStatus(400),
    "account_id_conflict": ErrorStatus(400),
    "account_forbidden": ErrorStatus(403),
    "account_not_found": ErrorStatus(404),
    # the account may not trade
    "account_disabled": ErrorStatus(422),
    "account_config_invalid": ErrorStatus(422),
    "account_type_mismatch": ErrorStatus(422),
    "account_type_undetected": ErrorStatus(422, retry_after=5),
    "account_type_unverified": ErrorStatus(422),
    # trading input
    "invalid_symbol": ErrorStatus(400),
    "too_many_symbols": ErrorStatus(400),
    "invalid_order": ErrorStatus(400),
    "invalid_order_id": ErrorStatus(400),
    "position_not_found": ErrorStatus(404),
    "close_qty_exceeds_position": ErrorStatus(422),
    "close_qty_too_small": ErrorStatus(422),
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
    # the order pipeline itself
    "idempotency_conflict": ErrorStatus(409),
    "broker_busy": ErrorStatus(503, retry_after=1),
    # the broker's errors (accounts/broker/contract.py: each class's code); their Retry-After is the
    # broker's own (details.retry_after_seconds)
    "broker_error": ErrorStatus(502),
    "broker_rejected": ErrorStatus(422),
    "upstream_rate_limited": ErrorStatus(429),
    "broker_unavailable": ErrorStatus(503),
    "broker_timeout": ErrorStatus(504),
    # the gateway
    "database_unavailable": ErrorStatus(503, retry_after=5),
    "internal_error": ErrorStatus(500),
}

_TRANSLATORS: list[tuple[type[BaseException], Callable[[BaseException], tuple[str, str, dict]]]] = []


class ApplicationError(Exception):
    """A failure with a stable code (answered with its ``ERROR_STATUSES`` status), a human sentence and details.
    ``headers`` adds headers to the answer (e.g. a ``Retry-After`` only this case of the code carries)."""

    def __init__(self, code: str, message: str, *, details: dict | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    @property
    def status_code(self) -> int:
        return error_status(self.code)


def register_error_translator(exc_type: type[BaseException], translate: Callable[[BaseException], tuple[str, str, dict]]) -> None:
    """Render an exception type as an error: ``translate(exc)`` returns its ``(code, message, details)``."""
    _TRANSLATORS.append((exc_type, translate))


def error_status(code: str, default: int = 400) -> int:
    entry = ERROR_STATUSES.get(code)
    return default if entry is None else entry.status


def error_headers(code: str, details: dict | None = None) -> dict:
    """Retry-After: the seconds the error itself gives (``details.retry_after_seconds``), else the code's own."""
    seconds = (details or {}).get("retry_after_seconds")
    if not seconds:
        entry = ERROR_STATUSES.get(code)
        seconds = entry.retry_after if entry else None
    return {"Retry-After": str(seconds)} if seconds else {}


def error_response_parts(code: str, message: str, details: dict | None = None) -> tuple[int, dict, dict]:
    """(status, body, headers) of a domain error, from the table."""
    return error_status(code), error_body(code, message, details), error_headers(code, details)


def exception_error(exc: BaseException) -> tuple[int, dict, dict] | None:
    """(status, body, headers) the handler answers an ``ApplicationError`` or a translated exception with;
    ``None`` for any other exception. Also what a per-item result (bulk, close-all) says of its failure."""
    if isinstance(exc, ApplicationError):
        status, body, headers = error_response_parts(exc.code, exc.message, exc.details)
        return status, body, {**headers, **exc.headers}
    for exc_type, translate in _TRANSLATORS:
        if isinstance(exc, exc_type):
            return error_response_parts(*translate(exc))
    return None


INTERNAL_ERROR_MESSAGE = "An internal error occurred; it has been logged."


_error_detail_json = lean_renderer(ErrorDetailSerializer)
_error_envelope_json = lean_renderer(ErrorResponseSerializer, prerendered=("error",))


def error_json(code: str, message: str, details: dict | None = None) -> dict:
    """The ``error`` object of the envelope: also what a per-item result (a batch quote, a bulk row) carries."""
    return _error_detail_json({"code": code, "message": message, "details": details or {}})


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return _error_envelope_json({"error": error_json(code, message, details)})


def error_json_response(code: str, message: str, details: dict | None = None) -> JsonResponse:
    """The error answered outside DRF's views (Django's handlers, /metrics), from the same table."""
    status, body, headers = error_response_parts(code, message, details)
    return JsonResponse(body, status=status, headers=headers)


_DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "invalid_token",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid_request",
}


def request_shape_error(exc: Exception) -> tuple[int, dict] | None:
    """Django's refusals of a request's shape: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413, any
    other SuspiciousOperation (too many fields, a bad multipart) is 400."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        parts = ("request_too_large", f"The request body is larger than the {limit} bytes allowed.", {"max_bytes": limit})
    elif isinstance(exc, SuspiciousOperation):
        parts = ("malformed_request", "The request is malformed.", None)
    else:
        return None
    return error_status(parts[0]), error_body(*parts)


def exception_handler(exc: Exception, context: dict) -> Response:
    set_rollback()  # an ATOMIC_REQUESTS transaction must not commit half a failed request
    known = exception_error(exc)
    if known is not None:
        status_code, body, headers = known
        return Response(body, status=status_code, headers=headers)
    shape = request_shape_error(exc)
    if shape is not None:
        return Response(shape[1], status=shape[0])
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # Connection-level failures only: an IntegrityError or ProgrammingError is a bug, not an outage.
        logger.error("database unavailable: %s", exc.__class__.__name__)
        status_code, body, headers = error_response_parts("database_unavailable", "The database is unavailable; retry shortly.")
        return Response(body, status=status_code, headers=headers)
    if not isinstance(exc, exceptions.APIException):
        # A bug. Logged with its (masked) traceback; the client gets a JSON 500 with no detail,
        # whatever DEBUG says, so an API response never carries a traceback.
        request = context.get("request")
        logger.error("unhandled error in %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"), exc_info=exc)
        return Response(error_body("internal_error", INTERNAL_ERROR_MESSAGE), status=error_status("internal_error"))

    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    headers = {}
    if isinstance(exc, exceptions.ValidationError):
        message, details = "The request is invalid.", {"fields": exc.detail}
        if isinstance(exc.detail, list):
            details = {"non_field_errors": exc.detail}
    elif isinstance(exc.detail, dict):
        # simplejwt's InvalidToken carries {"detail", "code", "messages": [{..., "message"}]}
        message = str(exc.detail.get("detail") or "The request was refused.")
        reasons = [str(m.get("message")) for m in exc.detail.get("messages", []) if isinstance(m, dict) and m.get("message")]
        details = {"reason": reasons[0]} if reasons else {}
    else:
        message, details = str(exc.detail), {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        retry_after = max(1, math.ceil(exc.wait))
        headers["Retry-After"] = str(retry_after)
        details = {"retry_after_seconds": retry_after}
    if isinstance(exc, (exceptions.AuthenticationFailed, exceptions.NotAuthenticated)):
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
    return Response(error_body(code, message, details), status=exc.status_code, headers=headers)


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    return error_json_response("not_found", f"No API route matches {request.path}.")


def bad_request(request, exception=None, *args, **kwargs):
    """Django's 400 handler (a SuspiciousOperation outside DRF views, e.g. in middleware): JSON under /api/."""
    if request.path.startswith("/api/"):
        shape = request_shape_error(exception)
        return JsonResponse(shape[1], status=shape[0]) if shape else error_json_response("malformed_request", "The request is malformed.")
    return defaults.bad_request(request, exception, *args, **kwargs)


def permission_denied(request, exception=None, *args, **kwargs):
    if request.path.startswith("/api/"):
        return error_json_response("permission_denied", "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception, *args, **kwargs)


def server_error(request, *args, **kwargs):
    """Django's 500 handler (errors outside DRF views): JSON under /api/, Django's plain page elsewhere."""
    if request.path.startswith("/api/"):
        return error_json_response("internal_error", INTERNAL_ERROR_MESSAGE)
    return defaults.server_error(request, *args, **kwargs)

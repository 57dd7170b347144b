"""``ApplicationError`` and the single DRF exception handler.

Every error response has the body ``{"error": {"code", "message", "details"}}``.

The HTTP status and headers of a domain error code are declared once, by the app that owns the code
(``register_error_statuses``; the trading app's table is ``trading/errors.py``); exceptions of a lower
layer that carry a code (the broker's errors) are turned into one by ``register_error_translator``.
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
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger("opitios.errors")


class ApplicationError(Exception):
    """A failure with a stable code, an HTTP status and a human sentence."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int | None = None,
        details: dict | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code


@dataclass(frozen=True)
class ErrorStatus:
    """How an error code is answered: its HTTP status, and a Retry-After (seconds) it always carries."""

    status: int
    retry_after: int | None = None


_STATUSES: dict[str, ErrorStatus] = {}
_TRANSLATORS: list[tuple[type[BaseException], Callable[[BaseException], tuple[str, str, dict]]]] = []


def register_error_statuses(table: dict[str, ErrorStatus]) -> None:
    """Declare the HTTP answer of domain error codes (called when an app is imported)."""
    _STATUSES.update(table)


def register_error_translator(exc_type: type[BaseException], translate: Callable[[BaseException], tuple[str, str, dict]]) -> None:
    """Render an exception type as an error: ``translate(exc)`` returns its ``(code, message, details)``."""
    _TRANSLATORS.append((exc_type, translate))


def error_status(code: str, default: int = 400) -> int:
    entry = _STATUSES.get(code)
    return default if entry is None else entry.status


def error_headers(code: str, details: dict | None = None) -> dict:
    """Retry-After: the seconds the error itself gives (``details.retry_after_seconds``), else the code's own."""
    seconds = (details or {}).get("retry_after_seconds")
    if not seconds:
        entry = _STATUSES.get(code)
        seconds = entry.retry_after if entry else None
    return {"Retry-After": str(seconds)} if seconds else {}


def error_response_parts(code: str, message: str, details: dict | None = None) -> tuple[int, dict, dict]:
    """(status, body, headers) of a domain error, from the registered table."""
    return error_status(code), error_body(code, message, details), error_headers(code, details)


INTERNAL_ERROR_MESSAGE = "An internal error occurred; it has been logged."


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


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
        return 413, error_body("request_too_large", f"The request body is larger than the {limit} bytes allowed.", {"max_bytes": limit})
    if isinstance(exc, SuspiciousOperation):
        return 400, error_body("malformed_request", "The request is malformed.")
    return None


def exception_handler(exc: Exception, context: dict) -> Response:
    set_rollback()  # an ATOMIC_REQUESTS transaction must not commit half a failed request
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code, headers=exc.headers)
    for exc_type, translate in _TRANSLATORS:
        if isinstance(exc, exc_type):
            status_code, body, headers = error_response_parts(*translate(exc))
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
        return Response(
            error_body("database_unavailable", "The database is unavailable; retry shortly."),
            status=503,
            headers={"Retry-After": "5"},
        )
    if not isinstance(exc, exceptions.APIException):
        # A bug. Logged with its (masked) traceback; the client gets a JSON 500 with no detail,
        # whatever DEBUG says, so an API response never carries a traceback.
        request = context.get("request")
        logger.error("unhandled error in %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"), exc_info=exc)
        return Response(error_body("internal_error", INTERNAL_ERROR_MESSAGE), status=500)

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
    return JsonResponse(error_body("not_found", f"No API route matches {request.path}."), status=404)


def bad_request(request, exception=None, *args, **kwargs):
    """Django's 400 handler (a SuspiciousOperation outside DRF views, e.g. in middleware): JSON under /api/."""
    if request.path.startswith("/api/"):
        status, body = request_shape_error(exception) or (400, error_body("malformed_request", "The request is malformed."))
        return JsonResponse(body, status=status)
    return defaults.bad_request(request, exception, *args, **kwargs)


def permission_denied(request, exception=None, *args, **kwargs):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("permission_denied", "You do not have permission to perform this action."), status=403)
    return defaults.permission_denied(request, exception, *args, **kwargs)


def server_error(request, *args, **kwargs):
    """Django's 500 handler (errors outside DRF views): JSON under /api/, Django's plain page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("internal_error", INTERNAL_ERROR_MESSAGE), status=500)
    return defaults.server_error(request, *args, **kwargs)

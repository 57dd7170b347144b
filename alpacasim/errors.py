"""Alpaca-style error bodies: ``{"code": int, "message": str}``."""

from __future__ import annotations

NOT_FOUND = 40410000
INVALID = 42210000
MALFORMED = 40010000
INVALID_SYMBOL = 40010001
FORBIDDEN = 40310000
UNAUTHORIZED = 40110000
RATE_LIMITED = 42910000
INTERNAL = 50010000
UNAVAILABLE = 50310000
TIMEOUT = 50410000


class SimError(Exception):
    """Raised by handlers and the broker; the middleware turns it into a JSON response."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"code": self.code, "message": self.message}


def not_found(message: str = "resource not found") -> SimError:
    return SimError(404, NOT_FOUND, message)


def invalid(message: str) -> SimError:
    return SimError(422, INVALID, message)


def malformed(message: str) -> SimError:
    return SimError(400, MALFORMED, message)


def forbidden(message: str) -> SimError:
    return SimError(403, FORBIDDEN, message)


def unauthorized(message: str = "request is not authorized") -> SimError:
    return SimError(401, UNAUTHORIZED, message)

"""Broker errors as order refusals (docs/architecture.md, "The order pipeline")."""
from __future__ import annotations

from accounts.broker import BrokerError

from .models import Outcome
from .results import _Refusal


def _broker_refusal(exc: BrokerError) -> tuple[str, _Refusal]:
    headers = {}
    details = {}
    if exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
        details["retry_after_seconds"] = exc.retry_after
    if exc.upstream_code:
        details["upstream_code"] = exc.upstream_code
    outcome = Outcome.REJECTED if exc.http_status in (404, 422) else Outcome.FAILED
    return outcome, _Refusal(exc.code, exc.message or exc.code, exc.http_status, details, headers)



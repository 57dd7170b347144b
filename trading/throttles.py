"""Scoped rate limits (docs/configuration.md, "rate_limits") on the shared counters (Redis when configured).

Per user (the token's ``user_id``) or per IP when anonymous, per scope; rates from ``rate_limits``
in secrets.yml, re-read on change. Responses carry ``X-RateLimit-*``; a 429 also ``Retry-After``.
When the store is down the throttle lets the request through, logs an error and reports
``degraded`` under ``throttling`` in detailed health.

Counting is ``accounts.budget.window_take``: a sliding-window estimate over two fixed windows of
the rate's period, one atomic round trip on Redis (``INCRBY``+``EXPIRE`` in one Lua script), and the
embedded cache's shared counter table otherwise (every local process counts together). The same
round trip reads the account cache's and the trading states' versions and, on the order routes, counts
the token's account's upstream budget and its order rate (``window_take_with_budget``) and reads its
newest balance snapshot for the balance check (``accounts.balance_cache.prefetched``): one round trip
for all of them per order; on a streamed quote it also reads the last value (``throttle_fetch``, as
``budget.Raw`` keys). A market-data route with a high limit counts in leases (``throttle_lease``:
accounts/window_lease.py), one round trip per many requests.
``X-RateLimit-Reset`` is the end of the current window.
"""
from __future__ import annotations

import logging
import math
import time

from rest_framework.throttling import SimpleRateThrottle

from accounts import account_cache, balance_cache, budget
from accounts.window_lease import lease_size, leases
from opitios import metrics
from opitios.auth import token_account_id, token_user_id
from opitios.config import current_config
from opitios.health import DEGRADED, OK, register_section
from risk import states as risk_states

from .pretrade import order_rate_prefix

logger = logging.getLogger("opitios.trading.throttles")

_last_failure: dict = {"at": None, "error": None}
DEGRADED_FOR_SECONDS = 60


class ConfiguredScopeThrottle(SimpleRateThrottle):
    """Scoped throttle with the rate of the view's ``throttle_scope``."""

    cache_format = "throttle:%(scope)s:%(ident)s"

    def __init__(self) -> None:  # the rate is looked up per request, in allow_request
        pass

    def get_rate(self) -> str:
        rates = current_config().rate_limits
        return rates.get(self.scope) or rates.get("default") or "120/min"

    def get_cache_key(self, request, view) -> str:
        user_id = token_user_id(request) if getattr(request, "auth", None) is not None else ""
        ident = f"user:{user_id}" if user_id else f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def parse_rate(self, rate):
        num, period = rate.split("/")
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
        return int(num), seconds

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, "throttle_scope", None) or "default"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = self.get_cache_key(request, view)
        try:
            prepay_pk = self._prepay_pk(request, view)
            versions_read = versions = (account_cache.VERSION_KEY, risk_states.VERSION_KEY)
            if prepay_pk is None:
                # a view may have raw keys read in this round trip too (the streamed quote: trading/quote_source.py)
                fetch = tuple(budget.Raw(k) for k in view.throttle_fetch()) if hasattr(view, "throttle_fetch") else ()
                if getattr(view, "throttle_lease", False) and lease_size(self.num_requests) > 1:
                    # No versions: a leased read may be 25 ms old, and this process's next order would trust a
                    # trading-state version it saw "now" (risk/states.py version_seen): a kill switch missed.
                    versions_read = ()
                    self.taken = leases.take(self.key, self.num_requests, window=self.duration, strict=True, read_also=fetch)
                else:
                    self.taken = budget.window_take(self.key, self.num_requests, window=self.duration, strict=True,
                                                    read_also=(*versions, *fetch))
                request.fetched = {k: self.taken.also[k] for k in fetch if k in self.taken.also}
            else:
                # also the account's order rate (trading/pretrade.py decides on it without a round trip of its own)
                # and its newest balance snapshot (the balance check's, accounts/balance_cache.py)
                snapshot = balance_cache.raw_key(prepay_pk)
                self.taken = budget.window_take_with_budget(self.key, self.num_requests, window=self.duration, strict=True,
                                                            account_pk=prepay_pk,
                                                            read_also=(*versions, snapshot) if snapshot else versions,
                                                            also_count={order_rate_prefix(prepay_pk): 1})
                # set or cleared: never an entry an earlier request on this thread left behind
                balance_cache.prefetched(prepay_pk if snapshot in self.taken.also else None, self.taken.also.get(snapshot))
        except Exception as exc:  # the store is down: fail open
            _last_failure.update(at=time.time(), error=exc.__class__.__name__)
            logger.error("rate-limit store unavailable, failing open scope=%s error=%s", self.scope, exc.__class__.__name__)
            return True
        request.rate_limit = self._headers(self.taken)
        if versions_read:
            # The account cache's version, read in this same round trip (accounts/account_cache.py).
            request.accounts_version = self.taken.also[account_cache.VERSION_KEY]
            risk_states.version_seen(self.taken.also[risk_states.VERSION_KEY])  # the trading states' version, same round trip
        if not self.taken.allowed:
            metrics.throttled.labels(self.scope).inc()
        return self.taken.allowed

    @staticmethod
    def _prepay_pk(request, view) -> int | None:
        """The order routes count the token's account's upstream budget in the throttle's round trip,
        when this process knows the account's pk (accounts.budget.window_take_with_budget)."""
        if not getattr(view, "prepay_budget", False) or getattr(request, "auth", None) is None:
            return None
        account_id = token_account_id(request)
        return account_cache.known_pk(account_id) if account_id else None

    def wait(self) -> float:
        return self.taken.retry_after

    def _headers(self, taken: budget.Reservation) -> dict:
        remaining = max(0, math.floor(self.num_requests - taken.used))
        headers = {"X-RateLimit-Limit": str(self.num_requests), "X-RateLimit-Remaining": str(remaining),
                   "X-RateLimit-Reset": str(math.ceil(taken.window_ends_at))}
        if not taken.allowed:
            headers["Retry-After"] = str(max(1, taken.retry_after))
        return headers


def throttling_health() -> dict:
    at = _last_failure["at"]
    if at is not None and time.time() - at < DEGRADED_FOR_SECONDS:
        return {"status": DEGRADED, "failing_open": True, "last_error": _last_failure["error"], "seconds_ago": round(time.time() - at, 1)}
    return {"status": OK, "failing_open": False}


register_section("throttling", throttling_health)

"""Where a REST quote comes from: the hub's last-value cache when the symbol is streamed and its value
is fresh (younger than ``market_data.max_quote_age_ms`` since the hub received it), else Alpaca over
REST. One cache read (one Redis round trip) per request, whatever the number of symbols; none of its
own for the single quote, whose throttle reads the value in its round trip (``fetch_keys``).

Each answer says ``source`` (``stream`` | ``rest``) and ``age_ms``: since the hub received the value for
``stream``, since the quote's exchange timestamp for ``rest`` (null without one).
"""
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from decimal import Decimal

from accounts.broker import Quote
from opitios import config, lastvalue

logger = logging.getLogger("opitios.market")


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def fetch_keys(symbols: list[str]) -> tuple[str, ...]:
    """The Redis keys of these symbols' streamed quotes, for a round trip made anyway (the throttle's; reading
    them when streamed quotes are off costs nothing more than the check would)."""
    return tuple(lastvalue.redis_keys([lastvalue.key("q", s) for s in symbols]))


def streamed_quotes(symbols: list[str], prefetched: dict | None = None) -> dict[str, tuple[Quote, int]]:
    """The fresh streamed quote of each symbol that has one, with its age in ms. ``prefetched``: the raw
    values ``fetch_keys`` named, read in another round trip (the cache is read only for what it lacks)."""
    max_age = config.current_config().market_data.max_quote_age_ms
    if not symbols or max_age <= 0:
        return {}
    try:
        found = lastvalue.get_many([lastvalue.key("q", s) for s in symbols], prefetched)
    except Exception as exc:  # the cache is down: REST answers
        logger.warning("last-value cache unavailable (%s); quotes over REST", exc.__class__.__name__)
        return {}
    now = time.time()
    out = {}
    for symbol in symbols:
        value = found.get(lastvalue.key("q", symbol))
        if value is None:
            continue
        age = round((now - value["received_at"]) * 1000)
        if age > max_age:
            continue
        ts = value.get("timestamp")
        out[symbol] = (Quote(symbol, _decimal(value.get("bid")), _decimal(value.get("ask")), _decimal(value.get("bid_size")),
                             _decimal(value.get("ask_size")), datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None), age)
    return out


def rest_age_ms(quote: Quote) -> int | None:
    if quote.timestamp is None:
        return None
    return max(0, round((datetime.now(UTC) - quote.timestamp).total_seconds() * 1000))

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
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

from accounts.broker import Quote
from opitios import config, lastvalue

from .formatting import quote_json

logger = logging.getLogger("opitios.market")


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


# The last value decoded per symbol, with its Quote and that Quote rendered (``quote_json``: QuoteFieldsSerializer's
# output). The hub rewrites a symbol about 10 times a second and REST may ask for it hundreds of times a second: a
# request that reads the same value again skips the Decimals, the timestamp's parse and the rendering (about a tenth
# of a cached quote's CPU). Keyed by the value itself (its exchange timestamp and receive time included), so a hit is
# exactly what decoding would give; shared by the process's threads (frozen Quote, a dict no caller changes).
_decoded: dict[str, tuple[dict, Quote, dict]] = {}
_DECODED_MAX = 4096  # symbols; past it the memo starts again (a streamed feed holds at most 405)


def _decode(symbol: str, value: dict) -> tuple[Quote, dict]:
    memo = _decoded.get(symbol)
    if memo is not None and memo[0] == value:
        return memo[1], memo[2]
    ts = value.get("timestamp")
    quote = Quote(symbol, _decimal(value.get("bid")), _decimal(value.get("ask")), _decimal(value.get("bid_size")),
                  _decimal(value.get("ask_size")), datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None)
    rendered = quote_json(quote)
    if len(_decoded) >= _DECODED_MAX:
        _decoded.clear()
    _decoded[symbol] = (value, quote, rendered)
    return quote, rendered


def fetch_keys(symbols: list[str]) -> tuple[str, ...]:
    """The Redis keys of these symbols' streamed quotes, for a round trip made anyway (the throttle's; reading
    them when streamed quotes are off costs nothing more than the check would)."""
    return tuple(lastvalue.redis_keys([lastvalue.key("q", s) for s in symbols]))


def _fresh(symbols: list[str], prefetched: dict | None) -> Iterator[tuple[str, Quote, dict, int]]:
    """(symbol, quote, quote rendered, age in ms) of each symbol with a fresh streamed value."""
    max_age = config.current_config().market_data.max_quote_age_ms
    if not symbols or max_age <= 0:
        return
    try:
        found = lastvalue.get_many([lastvalue.key("q", s) for s in symbols], prefetched)
    except Exception as exc:  # the cache is down: REST answers
        logger.warning("last-value cache unavailable (%s); quotes over REST", exc.__class__.__name__)
        return
    now = time.time()
    for symbol in symbols:
        value = found.get(lastvalue.key("q", symbol))
        if value is None:
            continue
        age = round((now - value["received_at"]) * 1000)
        if age > max_age:
            continue
        yield symbol, *_decode(symbol, value), age


def streamed_quotes(symbols: list[str], prefetched: dict | None = None) -> dict[str, tuple[Quote, int]]:
    """The fresh streamed quote of each symbol that has one, with its age in ms. ``prefetched``: the raw
    values ``fetch_keys`` named, read in another round trip (the cache is read only for what it lacks)."""
    return {symbol: (quote, age) for symbol, quote, _, age in _fresh(symbols, prefetched)}


def streamed_answers(symbols: list[str], prefetched: dict | None = None) -> dict[str, dict]:
    """``streamed_quotes`` as the API answers them: QuoteSerializer's output (``source: stream``, ``age_ms``)."""
    return {symbol: {**rendered, "source": "stream", "age_ms": age} for symbol, _, rendered, age in _fresh(symbols, prefetched)}


def rest_age_ms(quote: Quote) -> int | None:
    if quote.timestamp is None:
        return None
    return max(0, round((datetime.now(UTC) - quote.timestamp).total_seconds() * 1000))

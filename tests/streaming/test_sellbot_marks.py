"""The sell bot's marks: streamed symbols from the last-value cache, the others over REST, savings counted."""
import time
from decimal import Decimal

from opitios import lastvalue
from sellbot.marks import SAVED_KEY, option_quotes, rest_calls_saved

CALL, PUT = "AAPL260116C00190000", "AAPL260116P00190000"


def _cached(symbol, bid, age_seconds):
    lastvalue.put(lastvalue.key("q", symbol), {"bid": bid, "ask": bid + 0.1, "bid_size": 1, "ask_size": 2,
                                               "timestamp": "2026-01-02T15:04:05Z", "received_at": time.time() - age_seconds})


def test_fresh_streamed_marks_come_from_the_cache_and_stale_ones_over_rest(settings):
    from django.core.cache import cache

    cache.delete(SAVED_KEY)
    fetched = []

    def fetch(symbols):
        fetched.append(list(symbols))
        return {s: None for s in symbols}

    _cached(CALL, 1.5, 0)
    _cached(PUT, 2.5, 60)  # older than max_quote_age_ms (2 s): REST
    quotes = option_quotes([CALL, PUT], fetch)
    assert quotes[CALL].bid == Decimal("1.5") and quotes[PUT] is None and fetched == [[PUT]]
    assert rest_calls_saved() == 0  # one batch either way

    _cached(PUT, 2.5, 0)
    quotes = option_quotes([CALL, PUT], fetch)
    assert quotes[PUT].bid == Decimal("2.5") and fetched == [[PUT]]  # no second upstream call
    assert rest_calls_saved() == 1

"""Option marks for the sell bot from the hub's last-value cache (docs/streaming.md).

``option_quotes(symbols, fetch)`` answers each symbol the hub streams with a fresh value
(``market_data.max_quote_age_ms``) from the cache, and fetches only the others with ``fetch`` (the
REST batch, ``QUOTE_BATCH`` symbols a call). The upstream calls it saves are counted
(``rest_calls_saved()``). Not yet called by the sweep: sellbot/services/account_check.py is to adopt it.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from django.core.cache import cache

from accounts.broker import Quote
from sellbot.market import QUOTE_BATCH
from trading.quote_source import streamed_quotes

SAVED_KEY = "sellbot:rest_quote_calls_saved"


def option_quotes(symbols: list[str], fetch: Callable[[list[str]], dict[str, Quote | None]]) -> dict[str, Quote | None]:
    streamed = streamed_quotes(symbols)
    quotes: dict[str, Quote | None] = {s: q for s, (q, _age) in streamed.items()}
    rest = [s for s in symbols if s not in streamed]
    for i in range(0, len(rest), QUOTE_BATCH):
        quotes.update(fetch(rest[i:i + QUOTE_BATCH]))
    saved = math.ceil(len(symbols) / QUOTE_BATCH) - math.ceil(len(rest) / QUOTE_BATCH)
    if saved:
        cache.add(SAVED_KEY, 0, None)
        cache.incr(SAVED_KEY, saved)
    return quotes


def rest_calls_saved() -> int:
    return cache.get(SAVED_KEY) or 0

"""The live quotes panel's connection: where /ws/market-data is and, when market data is private, a
short-lived token that carries ``market_data`` only (the desk logs in with a session; the WebSocket
server, its own process, authenticates tokens: docs/streaming.md)."""
from __future__ import annotations

import logging
import os
import re

from opitios.auth import issue_token
from opitios.config import current_config

logger = logging.getLogger("opitios.desk")

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "SPY", "QQQ", "TSLA")
MAX_SYMBOLS = 10
TOKEN_TTL_SECONDS = 900
WS_PATH = "/ws/market-data"
_URL = re.compile(r"^wss?://[^\s/?#]+(/[^\s?#]*)?$")
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,20}$")


def ws_url(request) -> str:
    """``OPITIOS_WS_PUBLIC_URL`` when it is a ws:// or wss:// URL (an invalid value is logged and ignored),
    else the page's own host on ``OPITIOS_WS_PORT`` (8092)."""
    configured = os.environ.get("OPITIOS_WS_PUBLIC_URL", "").strip()
    if configured:
        if _URL.match(configured):
            return configured
        logger.warning("OPITIOS_WS_PUBLIC_URL is not a ws:// or wss:// URL; using the page's host instead")
    port = os.environ.get("OPITIOS_WS_PORT", "8092").strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        port = "8092"
    host = request.get_host().rsplit(":", 1)[0] if not request.get_host().endswith("]") else request.get_host()
    return f"{'wss' if request.is_secure() else 'ws'}://{host}:{port}{WS_PATH}"


def quote_symbols(raw: str | None) -> list[str]:
    """Up to ten valid stock or option symbols from ``?symbols=``, else market_data.default_symbols, else a few liquid names."""
    symbols = [s.strip().upper() for s in (raw or "").split(",") if s.strip()]
    symbols = [s for s in dict.fromkeys(symbols) if _SYMBOL.match(s)]
    if not symbols:
        symbols = list(current_config().market_data.default_symbols) or list(DEFAULT_SYMBOLS)
    return symbols[:MAX_SYMBOLS]


def quotes_connection(request) -> dict:
    token, error = "", ""
    if not current_config().api.market_data_public:
        try:
            token = issue_token(user_id=f"desk:{request.user.get_username()}", permissions=["market_data"], ttl_seconds=TOKEN_TTL_SECONDS)
        except ValueError:  # no signing key here (RS256 with tokens minted elsewhere)
            error = "Market data is private and this gateway holds no key to sign a market-data token."
    return {"url": ws_url(request), "token": token, "error": error, "symbols": quote_symbols(request.GET.get("symbols"))}

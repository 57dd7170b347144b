"""``market_data`` in secrets.yml (ranges from opitios/limits.py, bad values fall back to defaults) and
the hub's health section (down or stale is degraded, never unhealthy)."""
import time

from opitios.config import MarketDataConfig, parse_config
from streaming.status import summary


def test_market_data_section_parses_and_bad_values_fall_back():
    config = parse_config({"market_data": {
        "stock_feed": "sip", "option_feed": "opra", "default_symbols": ["aapl", " spy "], "max_quote_age_ms": 500,
        "max_backlog": 5, "stream_account": "no spaces allowed", "max_symbols_per_connection": 406, "unknown": 1,
    }}, source=None, demo=True)
    md = config.market_data
    assert (md.stock_feed, md.option_feed, md.default_symbols, md.max_quote_age_ms) == ("sip", "opra", ["AAPL", "SPY"], 500)
    defaults = MarketDataConfig()
    assert (md.max_backlog, md.stream_account, md.max_symbols_per_connection) == (
        defaults.max_backlog, None, defaults.max_symbols_per_connection)
    assert sorted(e.split(":")[0] for e in config.config_errors) == [
        "market_data.max_backlog", "market_data.max_symbols_per_connection", "market_data.stream_account", "market_data.unknown"]


def test_health_section_is_degraded_when_the_hub_is_down_stale_or_disconnected():
    now = time.time()
    assert summary(None)["status"] == "degraded"
    feeds = {"stock:iex": {"connected": True, "subscribed": 3, "last_message_at": now - 0.2, "reconnects_last_hour": 2}}
    fresh = summary({"leader": "node:1", "updated_at": now, "feeds": feeds}, now)
    assert fresh["status"] == "ok" and fresh["leader"] == "node:1"
    assert fresh["feeds"]["stock:iex"]["subscribed_symbols"] == 3 and fresh["feeds"]["stock:iex"]["last_message_age_ms"] == 200
    assert summary({"leader": "node:1", "updated_at": now - 60, "feeds": feeds}, now)["status"] == "degraded"
    down = {"stock:iex": {**feeds["stock:iex"], "connected": False}}
    assert summary({"leader": "node:1", "updated_at": now, "feeds": down}, now)["status"] == "degraded"

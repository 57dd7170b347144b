"""Fixtures of the sell-bot tests: a running alpacasim, accounts synced against it, a secrets.yml of
the test's own (re-read by ``current_config()``) and helpers to buy an opted-in option."""
from __future__ import annotations

import os
from decimal import Decimal

import pytest
import yaml
from django.core.cache import cache

from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

OPTION = "AAPL270115C00200000"
DEMO_ACCOUNTS = {
    "account_001": {"api_key": "PKDEMO0000000000001", "secret_key": "demo-secret-0000000001", "paper_trading": True},
    "account_002": {"api_key": "PKDEMO0000000000002", "secret_key": "demo-secret-0000000002", "paper_trading": True},
}
SELL_MODULE = {
    "enabled": True,
    "check_interval": 1,
    "order_cancel_minutes": 3,
    "max_exit_attempts": 2,
    "strategy_one": {"profit_rate": 1.1, "stop_loss_rate": 0.8},
}


def secrets_yaml(*, accounts: dict | None = None, sell_module: dict | None = None) -> dict:
    return {
        "jwt": {"algorithm": "HS256"},
        "trading": {"minimum_balance": 1000, "balance_max_age_seconds": 0},
        "rate_limits": {"option_order": "100000/min", "default": "100000/min"},
        "sell_module": {**SELL_MODULE, **(sell_module or {})},
        "accounts": accounts or DEMO_ACCOUNTS,
    }


class ConfigFile:
    def __init__(self, path):
        self.path = path
        self.data = secrets_yaml()
        self.write()

    def write(self):
        self.path.write_text(yaml.safe_dump(self.data))
        st = self.path.stat()
        self._bump = getattr(self, "_bump", 0) + 1  # a distinct mtime, so current_config() re-reads
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + self._bump * 1_000_000))

    def sell(self, **values):
        self.data["sell_module"].update(values)
        self.write()


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OPITIOS_SECRETS", str(tmp_path / "secrets.yml"))
    return ConfigFile(tmp_path / "secrets.yml")


@pytest.fixture
def sim_accounts(db, sim, config_file, settings):  # noqa: F811
    """The demo paper accounts, synced and type-detected against the running alpacasim."""
    from accounts.broker import reset_pool
    from accounts.models import AlpacaAccount
    from accounts.services import account_sync

    settings.ALPACA_PAPER_URL, settings.ALPACA_LIVE_URL, settings.ALPACA_DATA_URL = sim.paper_url, sim.live_url, sim.data_url
    reset_pool()
    cache.clear()
    sim.set_clock(is_open=True)
    account_sync()
    yield {a.account_id: a for a in AlpacaAccount.objects.all()}
    reset_pool()


def buy_option(account, *, symbol=OPTION, qty=2, auto_sell=True, ask=Decimal("2.00")):
    """An opted-in market buy through the order service; alpacasim fills it at the ask."""
    from trading.intents import OPTION as US_OPTION
    from trading.intents import OrderIntent
    from trading.services import order_place

    intent = OrderIntent(symbol=symbol, side="buy", type="market", time_in_force="day", asset_class=US_OPTION, qty=Decimal(qty),
                         auto_sell_enabled=auto_sell)
    result = order_place(account=account, intent=intent, source="api", user_id="tester")
    assert result.accepted, result.body
    return result

"""Fixtures of the risk tests: the demo accounts synced against a running alpacasim (tests/helpers/sim.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from accounts import broker as broker_seam
from accounts.models import AlpacaAccount
from accounts.services import account_sync
from opitios.config import current_config
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from tests.trading.conftest import _clean_cache, client_for, config_file, token  # noqa: F401 - fixtures

EXAMPLE = Path(__file__).resolve().parents[2] / "secrets.example.yml"
ORDER = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}


@pytest.fixture
def live(sim, settings, config_file):  # noqa: F811
    """The demo accounts synced from the example file and detected against alpacasim; risk caps off
    unless a test sets them."""
    settings.ALPACA_PAPER_URL, settings.ALPACA_LIVE_URL, settings.ALPACA_DATA_URL = sim.paper_url, sim.live_url, sim.data_url
    settings.BROKER_READ_TIMEOUT = 2.0
    config_file.data["accounts"] = yaml.safe_load(EXAMPLE.read_text())["accounts"]
    config_file.data["trading"].update({"max_orders_per_second": None, "minimum_balance": 0})
    config_file.write()
    broker_seam.reset_pool()
    account_sync(config=current_config(), detect=True)
    assert AlpacaAccount.objects.get(account_id="account_004").account_type == "live"
    yield sim
    sim.clear_faults()
    broker_seam.reset_pool()


def trader(account_id="account_001"):
    return client_for(token(user_id=f"user-{account_id}", account_id=account_id))


def admin():
    return client_for(token(user_id="risk-admin", permissions=("admin",), account_id=None))


def set_state(state: str, *, account_id: str | None = None, reason: str = "test"):
    body = {"scope": "account", "account_id": account_id} if account_id else {"scope": "global"}
    r = admin().post("/api/v1/admin/trading-state", {**body, "state": state, "reason": reason}, format="json")
    assert r.status_code == 200, r.json()
    return r.json()


def buy(client=None, **overrides):
    return (client or trader()).post("/api/v1/stocks/order", {**ORDER, **overrides}, format="json")


def sell(client=None, **overrides):
    return buy(client, **{"side": "sell", **overrides})

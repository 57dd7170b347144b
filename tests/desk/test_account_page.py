"""One account's desk page against a running alpacasim: holdings and the equity curve through the broker
seam (one call each, for this account only), realized P&L by FIFO from fills the ledger recorded from
trade updates (trading/ledger.py), recent orders with their broker events, and the sell bot's positions."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from accounts import broker as broker_seam
from accounts.broker.contract import TradeUpdate
from accounts.broker.convert import order_from_json
from accounts.models import AlpacaAccount
from accounts.services import account_sync
from opitios.config import current_config
from sellbot.models import ManagedPosition
from tests.desk.conftest import T0
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from tests.trading.conftest import client_for, config_file, token  # noqa: F401 - config_file is a fixture
from trading import ledger

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "secrets.example.yml"
OPTION = "AAPL261218C00200000"


@pytest.fixture
def live(sim, settings, config_file):  # noqa: F811
    settings.ALPACA_PAPER_URL, settings.ALPACA_LIVE_URL, settings.ALPACA_DATA_URL = sim.paper_url, sim.live_url, sim.data_url
    config_file.data["accounts"] = yaml.safe_load(EXAMPLE.read_text())["accounts"]
    config_file.write()
    broker_seam.reset_pool()
    account_sync(config=current_config(), detect=True)
    yield sim
    broker_seam.reset_pool()


def fill(account, n: int, *, symbol: str, side: str, qty: str, price: str, cumulative: str, total: str, minutes: int,
         asset_class: str = "us_equity", event: str = "fill"):
    """One execution of external order ``ext-<n>`` as the trade-updates stream delivers it."""
    at = T0 + timedelta(minutes=minutes)
    order = {"id": f"b-{n}", "client_order_id": f"ext-{n}", "symbol": symbol, "asset_class": asset_class, "side": side, "type": "market",
             "time_in_force": "day", "status": "filled" if event == "fill" else "partially_filled", "qty": total, "filled_qty": cumulative,
             "filled_avg_price": price, "created_at": T0.isoformat(), "submitted_at": T0.isoformat()}
    update = TradeUpdate(event=event, order=order_from_json(order), timestamp=at, received_at=at + timedelta(milliseconds=2),
                         qty=Decimal(qty), price=Decimal(price), position_qty=None, execution_id=f"x-{n}-{cumulative}")
    assert not ledger.trade_update_record(account=account, update=update).duplicate


def test_account_page_holdings_equity_pnl_orders_and_managed_positions(live, desk_client):
    account = AlpacaAccount.objects.get(account_id="account_001")
    r = client_for(token(user_id="u1", account_id="account_001")).post(
        "/api/v1/stocks/order", {"symbol": "MSFT", "qty": "2", "side": "buy", "type": "market", "time_in_force": "day",
                                 "client_order_id": "desk-1"}, format="json")
    assert r.status_code == 201, r.content
    day = 24 * 60
    fill(account, 1, symbol="AAPL", side="buy", qty="10", price="100", cumulative="10", total="10", minutes=0)
    fill(account, 2, symbol="AAPL", side="buy", qty="3", price="110", cumulative="3", total="5", minutes=1, event="partial_fill")
    fill(account, 2, symbol="AAPL", side="buy", qty="2", price="111", cumulative="5", total="5", minutes=2)
    fill(account, 3, symbol="AAPL", side="sell", qty="12", price="120", cumulative="12", total="12", minutes=day)  # +220
    fill(account, 4, symbol=OPTION, side="buy", qty="2", price="1.50", cumulative="2", total="2", minutes=day, asset_class="us_option")
    fill(account, 5, symbol=OPTION, side="sell", qty="2", price="2.50", cumulative="2", total="2", minutes=2 * day,
         asset_class="us_option")  # 2 × 1.00 × 100 = +200
    fill(account, 6, symbol="AAPL", side="sell", qty="3", price="105", cumulative="3", total="3", minutes=8 * day)  # −5 − 12 = −17
    ManagedPosition.objects.create(account=account, symbol=OPTION, qty=1, entry_price=Decimal("1.5"), opened_at=T0,
                                   high_water_mark=Decimal("2.75"))

    body = desk_client.get("/desk/accounts/account_001/").content.decode()
    holdings = body.split('id="holdings"')[1].split('id="equity-curve"')[0]
    assert "MSFT" in holdings and ">2<" in holdings and "The broker did not answer" not in holdings
    curve = body.split('id="equity-curve"')[1].split('id="realized-pnl"')[0]
    assert '<svg class="equity-chart"' in curve and "<circle" in curve and "$" in curve

    assert "+$403.00" in body.split('id="realized-total"')[1][:80]  # 220 + 200 − 17
    by_symbol = body.split('id="pnl-by-symbol"')[1].split("</table>")[0]
    assert "AAPL" in by_symbol and "+$203.00" in by_symbol and OPTION in by_symbol and "+$200.00" in by_symbol
    daily = body.split('id="pnl-day"')[1].split("</table>")[0]
    assert "2026-11-24" in daily and "+$220.00" in daily and "2026-11-25" in daily and "2026-12-01" in daily and "−$17.00" in daily
    weekly = body.split('id="pnl-week"')[1].split("</table>")[0]
    assert "2026-11-23" in weekly and "+$420.00" in weekly and "2026-11-30" in weekly
    monthly = body.split('id="pnl-month"')[1].split("</table>")[0]
    assert "2026-11" in monthly and "+$420.00" in monthly and "2026-12" in monthly

    orders = body.split('id="recent-orders"')[1].split("</table>")[0]
    assert "desk-1" not in orders and "MSFT" in orders  # the gateway's own order, with its total ms
    assert "partial_fill 3@$110.00" in orders and "fill 2@$111.00" in orders and "→" in orders
    managed = body.split('id="managed-positions"')[1].split("</table>")[0]
    assert OPTION in managed and "$2.75" in managed and "open" in managed


def test_a_broker_fault_leaves_the_rest_of_the_page(live, desk_client):
    live.set_fault(route="positions", status=503)
    response = desk_client.get("/desk/accounts/account_001/")
    body = response.content.decode()
    assert response.status_code == 200
    holdings = body.split('id="holdings"')[1].split('id="equity-curve"')[0]
    assert "The broker did not answer: broker_unavailable" in holdings and 'id="realized-pnl"' in body

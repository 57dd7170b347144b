"""Cash and margin accounts (multiplier 1, 2, 4), through alpaca-py's TradingClient.

With AAPL pinned at 100 (bid 99.99, ask 100.01, last 100): Reg T initial margin is 50% of the stock
positions, maintenance 30%; options are paid in full.
"""

from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, OrderStatus

from alpacasim.config import load_config
from tests.helpers.sim import SimError

from .conftest import PAPER_KEY, cash_account, trading_client
from .test_order_rejections import refused
from .test_orders import market


def test_a_cash_account_has_its_cash_as_buying_power_and_may_not_short(sim, trading):
    cash_account(sim)
    sim.set_price("AAPL", 100)
    acct = trading.get_account()
    assert acct.multiplier == "1" and acct.shorting_enabled is False
    assert Decimal(acct.buying_power) == Decimal(acct.regt_buying_power) == 100000
    assert Decimal(acct.daytrading_buying_power) == 0 and Decimal(acct.initial_margin) == 0
    assert trading.get_account_configurations().max_margin_multiplier == "1"
    assert "not allowed to short" in refused(trading, market("AAPL", 5, OrderSide.SELL), 403)
    assert "insufficient buying power" in refused(trading, market("AAPL", 1500), 403)  # 150,015 > cash


def test_a_reg_t_margin_account_buys_on_margin_and_sells_short(sim, trading):
    assert sim.upsert_account(PAPER_KEY, multiplier=2)["multiplier"] == 2
    sim.set_price("AAPL", 100)
    acct = trading.get_account()
    assert acct.multiplier == "2" and acct.shorting_enabled is True
    assert Decimal(acct.buying_power) == Decimal(acct.regt_buying_power) == 200000
    assert Decimal(acct.non_marginable_buying_power) == Decimal(acct.options_buying_power) == 100000
    assert trading.submit_order(market("AAPL", 1500)).status == OrderStatus.FILLED  # 150,015 on margin
    acct = trading.get_account()
    assert Decimal(acct.cash) == Decimal("-50015.00") and Decimal(acct.equity) == Decimal("99985.00")
    assert Decimal(acct.initial_margin) == 75000 and Decimal(acct.maintenance_margin) == 45000
    assert Decimal(acct.buying_power) == Decimal("49970.00")  # (equity - initial margin) x 2
    assert Decimal(acct.options_buying_power) == Decimal("24985.00")  # the excess equity, not doubled
    assert "insufficient buying power" in refused(trading, market("AAPL", 500), 403)
    trading.close_all_positions(cancel_orders=True)
    short = trading.submit_order(market("AAPL", 100, OrderSide.SELL))
    assert short.status == OrderStatus.FILLED and short.position_intent == "sell_to_open"
    acct = trading.get_account()
    assert Decimal(acct.short_market_value) == -10000 and Decimal(acct.initial_margin) == 5000
    assert Decimal(acct.buying_power) == (Decimal(acct.equity) - 5000) * 2


def test_multiplier_4_adds_intraday_buying_power(sim, trading):
    sim.upsert_account(PAPER_KEY, multiplier=4)
    sim.set_price("AAPL", 100)
    acct = trading.get_account()
    assert acct.multiplier == "4"
    assert Decimal(acct.buying_power) == Decimal(acct.daytrading_buying_power) == 400000
    assert Decimal(acct.regt_buying_power) == 200000 and Decimal(trading.get("/account")["bod_dtbp"]) == 400000
    assert trading.submit_order(market("AAPL", 3000)).status == OrderStatus.FILLED  # 300,030
    acct = trading.get_account()
    assert Decimal(acct.maintenance_margin) == 90000
    assert Decimal(acct.daytrading_buying_power) == (Decimal(acct.equity) - 90000) * 4
    assert Decimal(acct.regt_buying_power) == 0  # over the overnight limit: initial margin 150,000 > equity
    assert acct.pattern_day_trader is False


def test_no_shorting_configuration_refuses_short_sales_on_margin(sim, trading):
    sim.upsert_account(PAPER_KEY, multiplier=2)
    sim.set_price("AAPL", 100)
    conf = trading.get_account_configurations()
    assert conf.max_margin_multiplier == "2"
    conf.no_shorting = True
    trading.set_account_configurations(conf)
    assert trading.get_account().shorting_enabled is False
    assert "not allowed to short" in refused(trading, market("AAPL", 1, OrderSide.SELL), 403)


def test_the_multiplier_is_validated(sim, tmp_path):
    with pytest.raises(SimError, match="422.*multiplier"):
        sim.upsert_account(PAPER_KEY, multiplier=3)
    path = tmp_path / "sim.yml"
    path.write_text("accounts:\n  - {api_key: K, secret_key: S, multiplier: 4}\n")
    assert load_config(path).accounts[0].multiplier == 4
    path.write_text("accounts:\n  - {api_key: K, secret_key: S, multiplier: 3}\n")
    with pytest.raises(ValueError, match="multiplier"):
        load_config(path)


def test_a_margin_account_from_the_control_api_trades(sim):
    sim.upsert_account("PKMARGIN01", "secret", multiplier=2, cash=1000)
    client = trading_client(sim, key="PKMARGIN01", secret="secret")
    assert Decimal(client.get_account().buying_power) == 2000
    with pytest.raises(APIError) as err:
        client.submit_order(market("AAPL", 1000))
    assert err.value.status_code == 403

from datetime import date, timedelta
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import AccountStatus, AssetClass
from alpaca.trading.requests import (
    GetAssetsRequest,
    GetCalendarRequest,
    GetOptionContractsRequest,
)

from .conftest import (
    LIVE_KEY,
    LIVE_SECRET,
    LOW_CASH_KEY,
    LOW_CASH_SECRET,
    PAPER_KEY,
    PAPER_SECRET,
    trading_client,
)


def test_paper_account_values(trading):
    acct = trading.get_account()
    assert acct.status == AccountStatus.ACTIVE
    assert acct.account_number.startswith("PA") and len(acct.account_number) == 12
    assert Decimal(acct.cash) == Decimal(100000)
    assert Decimal(acct.equity) == Decimal(100000)
    assert acct.multiplier == "2" and acct.shorting_enabled is True  # the demo accounts are margin accounts
    assert Decimal(acct.buying_power) == Decimal(200000)  # (equity - initial margin) x 2
    assert acct.currency == "USD"
    assert acct.options_approved_level == 3


def test_low_cash_account(sim):
    acct = trading_client(sim, LOW_CASH_KEY, LOW_CASH_SECRET).get_account()
    assert Decimal(acct.cash) == Decimal(4200)


def test_account_number_is_deterministic(sim):
    first = trading_client(sim).get_account().account_number
    sim.reset()
    assert trading_client(sim).get_account().account_number == first


def test_live_account_only_on_live(sim):
    live = trading_client(sim, LIVE_KEY, LIVE_SECRET, paper=False).get_account()
    assert not live.account_number.startswith("PA")
    assert Decimal(live.cash) == Decimal(250000)
    with pytest.raises(APIError) as err:
        trading_client(sim, LIVE_KEY, LIVE_SECRET, paper=True).get_account()
    assert err.value.status_code == 401
    assert err.value.code == 40110000


def test_paper_key_refused_on_live(sim):
    with pytest.raises(APIError) as err:
        trading_client(sim, PAPER_KEY, PAPER_SECRET, paper=False).get_account()
    assert err.value.status_code == 401


def test_bad_secret_refused(sim):
    with pytest.raises(APIError) as err:
        trading_client(sim, PAPER_KEY, "wrong").get_account()
    assert err.value.status_code == 401
    assert err.value.code == 40110000


def test_upsert_account_sets_cash_and_adds_accounts(sim):
    sim.upsert_account(PAPER_KEY, cash="1234.5")
    assert Decimal(trading_client(sim).get_account().cash) == Decimal("1234.50")
    sim.upsert_account("PKNEW0000000000001", "new-secret", paper=True, cash=777)
    acct = trading_client(sim, "PKNEW0000000000001", "new-secret").get_account()
    assert Decimal(acct.cash) == Decimal(777)
    sim.reset()
    assert Decimal(trading_client(sim).get_account().cash) == Decimal(100000)


def test_clock_real_and_overridden(sim, trading):
    clock = trading.get_clock()
    assert clock.next_open > clock.timestamp or clock.is_open
    assert clock.timestamp.utcoffset() is not None
    sim.set_clock(is_open=True)
    assert trading.get_clock().is_open is True
    sim.set_clock(is_open=False, now="2030-01-02T15:00:00Z")
    clock = trading.get_clock()
    assert clock.is_open is False
    assert clock.timestamp.year == 2030
    sim.set_clock(mode="real", now=None)
    sim.set_clock(
        is_open=None, now="2030-01-02T15:00:00Z"
    )  # a Wednesday, 10:00 in New York
    clock = trading.get_clock()
    assert clock.is_open is True
    assert clock.next_close.isoformat() == "2030-01-02T16:00:00-05:00"
    assert clock.next_open.isoformat() == "2030-01-03T09:30:00-05:00"


def test_calendar(trading):
    days = trading.get_calendar(
        GetCalendarRequest(start=date(2030, 1, 7), end=date(2030, 1, 20))
    )
    assert [d.date.weekday() for d in days] == [0, 1, 2, 3, 4] * 2
    assert days[0].open.hour == 9 and days[0].open.minute == 30
    assert days[0].close.hour == 16


def test_assets(trading):
    assets = trading.get_all_assets(GetAssetsRequest(asset_class=AssetClass.US_EQUITY))
    symbols = {a.symbol for a in assets}
    assert {"AAPL", "MSFT", "SPY"} <= symbols
    aapl = trading.get_asset("AAPL")
    assert (
        aapl.asset_class == AssetClass.US_EQUITY and aapl.tradable and aapl.fractionable
    )
    with pytest.raises(APIError) as err:
        trading.get_asset("not a symbol")
    assert err.value.status_code == 404 and err.value.code == 40410000


def test_option_contracts(trading):
    soon = date.today() + timedelta(days=70)
    resp = trading.get_option_contracts(
        GetOptionContractsRequest(
            underlying_symbols=["AAPL"],
            type="call",
            expiration_date_lte=soon,
            limit=500,
        )
    )
    contracts = resp.option_contracts
    assert contracts and all(
        c.underlying_symbol == "AAPL" and c.type == "call" for c in contracts
    )
    c = contracts[0]
    assert c.root_symbol == "AAPL" and c.size == "100"
    assert c.symbol.startswith("AAPL") and c.symbol[10] == "C"
    assert float(c.symbol[-8:]) / 1000 == c.strike_price
    one = trading.get_option_contract("AAPL270115C00190000")
    assert one.strike_price == 190.0 and one.expiration_date == date(2027, 1, 15)
    page = trading.get_option_contracts(
        GetOptionContractsRequest(underlying_symbols=["AAPL"], limit=5)
    )
    assert len(page.option_contracts) == 5 and page.next_page_token

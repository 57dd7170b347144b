"""Realized P&L by FIFO (desk/pnl.py) on a known sequence of fills, with every figure worked out by hand."""
import datetime as dt
from decimal import Decimal as D

from desk.pnl import OPTION_MULTIPLIER, Fill, realize_fifo, realized_by_period, realized_by_symbol

OPTION = "AAPL261218C00200000"


def at(day: int, hour: int = 15, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


FILLS = [
    # AAPL: 10 @ 100, then one order of 5 filled in two parts (3 @ 110, 2 @ 111)
    Fill("AAPL", "buy", D("10"), D("100"), at(23, 14)),
    Fill("AAPL", "buy", D("3"), D("110"), at(23, 15)),
    Fill("AAPL", "buy", D("2"), D("111"), at(23, 16)),
    # sell 12 @ 120: 10 × (120 − 100) + 2 × (120 − 110) = 200 + 20 = 220; left: 1 @ 110, 2 @ 111
    Fill("AAPL", "sell", D("12"), D("120"), at(24)),
    # sell 3 @ 105 a week later (and in December): 1 × (105 − 110) + 2 × (105 − 111) = −5 − 12 = −17
    Fill("AAPL", "sell", D("3"), D("105"), at(1, month=12)),
    # the option, ×100: 2 @ 1.50 and 1 @ 2.00, then sold 2 @ 2.50 and 1 @ 1.00
    Fill(OPTION, "buy", D("2"), D("1.50"), at(24, 14), OPTION_MULTIPLIER),
    Fill(OPTION, "buy", D("1"), D("2.00"), at(24, 15), OPTION_MULTIPLIER),
    Fill(OPTION, "sell", D("2"), D("2.50"), at(25, 14), OPTION_MULTIPLIER),  # 2 × (2.50 − 1.50) × 100 = 200
    Fill(OPTION, "sell", D("1"), D("1.00"), at(25, 15), OPTION_MULTIPLIER),  # 1 × (1.00 − 2.00) × 100 = −100
    Fill(OPTION, "buy", D("1"), D("3.00"), at(2, month=12), OPTION_MULTIPLIER),  # stays open
    # TSLA short: sell 4 @ 50, covered 4 @ 45 in two parts: (50 − 45) × 4 = 20
    Fill("TSLA", "sell", D("4"), D("50"), at(25, 16)),
    Fill("TSLA", "buy", D("1"), D("45"), at(2, 14, month=12)),
    Fill("TSLA", "buy", D("3"), D("45"), at(2, 15, month=12)),
]


def test_fifo_realized_pnl_by_symbol_and_period():
    result = realize_fifo(list(reversed(FILLS)))  # any input order: matched by time
    assert realized_by_symbol(result.realizations) == {"AAPL": D("203"), OPTION: D("100"), "TSLA": D("20")}
    assert realized_by_period(result.realizations, "day") == [
        (dt.date(2026, 12, 2), D("20")), (dt.date(2026, 12, 1), D("-17")),
        (dt.date(2026, 11, 25), D("100")), (dt.date(2026, 11, 24), D("220")),
    ]
    # ISO weeks from Monday: 2026-11-23 and 2026-11-30
    assert realized_by_period(result.realizations, "week") == [(dt.date(2026, 11, 30), D("3")), (dt.date(2026, 11, 23), D("320"))]
    assert realized_by_period(result.realizations, "month") == [(dt.date(2026, 12, 1), D("3")), (dt.date(2026, 11, 1), D("320"))]
    [lot] = result.open_lots
    assert (lot.symbol, lot.qty, lot.price, lot.multiplier) == (OPTION, D("1"), D("3.00"), 100)


def test_a_partial_close_keeps_the_rest_of_the_oldest_lot_first():
    fills = [Fill("SPY", "buy", D("5"), D("10"), at(23)), Fill("SPY", "buy", D("5"), D("20"), at(24)),
             Fill("SPY", "sell", D("2"), D("30"), at(25)), Fill("SPY", "sell", D("4"), D("30"), at(26))]
    result = realize_fifo(fills)
    # 2 × 20 = 40; then 3 × 20 (rest of the first lot) + 1 × 10 = 70
    assert [r.pnl for r in result.realizations] == [D("40"), D("60"), D("10")]
    assert [(lot.qty, lot.price) for lot in result.open_lots] == [(D("4"), D("20"))]


def test_a_sell_past_the_long_position_opens_a_short():
    result = realize_fifo([Fill("X", "buy", D("1"), D("10"), at(23)), Fill("X", "sell", D("3"), D("12"), at(24)),
                           Fill("X", "buy", D("2"), D("11"), at(25))])
    assert [r.pnl for r in result.realizations] == [D("2"), D("2")]  # long 1 × (12 − 10); short 2 × (12 − 11)
    assert result.open_lots == []

"""Account margin: Alpaca's multiplier and its buying-power rules (cash, Reg T and intraday).

``multiplier`` 1 is a cash account: buying power is the cash, and it may not sell short. 2 is a Reg T
margin account: buying power is twice the excess equity (equity less the initial margin). 4 adds
intraday buying power: four times the equity less the maintenance margin. The pattern-day-trader rule
(retired 2026-06-04) is not simulated.
"""

from __future__ import annotations

from decimal import Decimal

MULTIPLIERS = (1, 2, 4)
INITIAL = Decimal("0.5")  # Reg T initial margin on stocks, long and short
MAINTENANCE = Decimal("0.3")  # maintenance margin on stocks, long and short
ZERO = Decimal(0)


def check_multiplier(value: object) -> int:
    try:
        m = int(str(value))
    except ValueError:
        m = 0
    if m not in MULTIPLIERS:
        raise ValueError(f"multiplier must be 1 (cash), 2 or 4 (margin), not {value!r}")
    return m


def requirements(stock_gross: Decimal, option_long: Decimal) -> tuple[Decimal, Decimal]:
    """Initial and maintenance margin: a share of the stock positions' gross value; options are paid
    in full (not marginable)."""
    return stock_gross * INITIAL + option_long, stock_gross * MAINTENANCE + option_long


def buying_power(
    multiplier: int, cash: Decimal, equity: Decimal, short_mv: Decimal, initial: Decimal,
    maintenance: Decimal, reserved: Decimal, last_equity: Decimal, last_maintenance: Decimal,
) -> dict[str, Decimal]:
    """The account's buying-power fields; ``reserved`` is what open buy orders hold."""
    if multiplier == 1:
        bp = max(ZERO, cash + short_mv - reserved)
        return {
            "buying_power": bp, "regt_buying_power": bp, "daytrading_buying_power": ZERO,
            "non_marginable_buying_power": bp, "options_buying_power": bp, "bod_dtbp": ZERO,
        }
    excess = max(ZERO, equity - initial)
    regt = max(ZERO, excess * 2 - reserved)
    non_marginable = max(ZERO, excess - reserved)
    if multiplier == 4:
        dtbp = max(ZERO, (equity - maintenance) * 4 - reserved)
        bod = max(ZERO, (last_equity - last_maintenance) * 4)
    else:
        dtbp = bod = ZERO
    return {
        "buying_power": dtbp if multiplier == 4 else regt, "regt_buying_power": regt,
        "daytrading_buying_power": dtbp, "non_marginable_buying_power": non_marginable,
        "options_buying_power": non_marginable, "bod_dtbp": bod,
    }

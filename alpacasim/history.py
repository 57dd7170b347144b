"""GET /account/portfolio/history: the equity at each recorded close (1D), or intraday points valued
from the account's holdings timeline at the walk's price of each instant (1Min, 5Min, 15Min, 1H)."""

from __future__ import annotations

import bisect
from datetime import date, datetime, timedelta
from decimal import Decimal

from . import errors, nyse
from .accounts import Account
from .market import NY, parse_occ

PERIOD_UNITS = {"D": 1, "W": 7, "M": 30, "A": 365}
INTRADAY = {"1Min": 60, "5Min": 300, "15Min": 900, "1H": 3600}
REPORTING = ("market_hours", "extended_hours", "continuous")
MAX_INTRADAY_DAYS = 30


def _period_days(period: str) -> int:
    try:
        days = int(period[:-1] or 1) * PERIOD_UNITS[period[-1]]
    except (KeyError, ValueError, IndexError):
        raise errors.invalid(f"invalid period: {period!r}") from None
    if days <= 0:
        raise errors.invalid(f"invalid period: {period!r}")
    return days


def portfolio_history(broker, acct: Account, query) -> dict:
    period = (query.get("period") or "1M").upper()
    days = _period_days(period)
    # Alpaca's default: 1Min under 7 days, 15Min under 30, else 1D
    timeframe = query.get("timeframe") or ("1Min" if days < 7 else "15Min" if days < 30 else "1D")
    if timeframe != "1D" and timeframe not in INTRADAY:
        raise errors.invalid(f"invalid timeframe: {timeframe!r} (1Min, 5Min, 15Min, 1H or 1D)")
    broker.evaluate_account(acct)
    now = broker.market.clock.now()
    if timeframe == "1D":
        return _daily(broker, acct, now, days)
    if days > MAX_INTRADAY_DAYS:
        raise errors.invalid(f"intraday timeframes cover at most {MAX_INTRADAY_DAYS} days")
    reporting = query.get("intraday_reporting") or (
        "extended_hours" if str(query.get("extended_hours")).lower() == "true" else "market_hours"
    )
    if reporting not in REPORTING:
        raise errors.invalid(f"invalid intraday_reporting: {reporting!r}")
    per_day = (query.get("pnl_reset") or "per_day") != "no_reset"
    return _intraday(broker, acct, now, days, timeframe, reporting, per_day)


def _daily(broker, acct: Account, now: datetime, days: int) -> dict:
    """The equity at each recorded close of the period, then the current equity."""
    today = now.astimezone(NY).date()
    first = today - timedelta(days=days)
    points = [(d, e) for d, e in sorted(acct.closes.items()) if first <= d < today]
    points.append((today, broker.valuation(acct)["equity"]))
    base = points[0][1]
    stamps = [int(datetime.combine(d, datetime.min.time(), NY).timestamp()) for d, _ in points]
    return _body(stamps, [e for _, e in points], [base] * len(points), base, "1D", None)


def _intraday(broker, acct, now, days, timeframe, reporting, per_day) -> dict:
    step = INTRADAY[timeframe]
    last_day = nyse.session_day(now)
    start_day = last_day - timedelta(days=days - 1)
    timeline = sorted(acct.timeline, key=lambda entry: entry[0])
    keys = [entry[0] for entry in timeline]

    def equity_at(ts: float) -> Decimal:
        i = bisect.bisect_right(keys, ts)
        if i:
            cash, holdings = timeline[i - 1][1], timeline[i - 1][2]
        else:
            cash, holdings = acct.timeline_base or (acct.initial_cash, {})
        at = datetime.fromtimestamp(ts, NY)
        return cash + sum(
            (qty * broker.close_price(sym, at) * (100 if parse_occ(sym) else 1) for sym, qty in holdings.items()),
            Decimal(0),
        )

    now_ts = now.timestamp()
    stamps, equity, bases = [], [], []
    first_base = first_asof = None
    for d in _days(start_day, last_day, reporting):
        begin, end = _window(d, reporting)
        prev_close = nyse.hours(nyse.previous_trading_day(d))[2]
        day_base = equity_at(prev_close.timestamp())
        if first_base is None:
            first_base, first_asof = day_base, prev_close.astimezone(NY).date()
        t = begin
        while t < end and t <= now_ts:
            stamps.append(int(t))
            equity.append(equity_at(min(t + step, end, now_ts)))
            bases.append(day_base if per_day else first_base)
            t += step
    if first_base is None:
        first_base = broker.valuation(acct)["equity"]
    return _body(stamps, equity, bases, first_base, timeframe, first_asof)


def _days(start: date, end: date, reporting: str) -> list[date]:
    if reporting == "continuous":
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return nyse.trading_days(start, end)


def _window(d: date, reporting: str) -> tuple[float, float]:
    if reporting == "continuous":
        begin = datetime.combine(d, datetime.min.time(), NY)
        return begin.timestamp(), (begin + timedelta(days=1)).timestamp()
    pre, open_, close, post = nyse.hours(d)
    if reporting == "extended_hours":
        return pre.timestamp(), post.timestamp()
    return open_.timestamp(), close.timestamp()


def _body(stamps, equity, bases, base_value, timeframe, base_asof) -> dict:
    out = {
        "timestamp": stamps,
        "equity": [float(e) for e in equity],
        "profit_loss": [float(e - b) for e, b in zip(equity, bases, strict=True)],
        "profit_loss_pct": [float((e - b) / b) if b else 0.0 for e, b in zip(equity, bases, strict=True)],
        "base_value": float(base_value),
        "timeframe": timeframe,
        "cashflow": {},
    }
    if base_asof is not None:
        out["base_value_asof"] = base_asof.isoformat()
    return out

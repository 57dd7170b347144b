"""The NYSE calendar: trading days, early closes and the four sessions, in America/New_York.

Holidays and early closes are NYSE's published schedule for 2025-2027 (including the 2025-01-09 day
of mourning). Outside those years only weekends are closed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
PRE_OPEN, OPEN, CLOSE, POST_CLOSE = time(4, 0), time(9, 30), time(16, 0), time(20, 0)
EARLY_CLOSE, EARLY_POST_CLOSE = time(13, 0), time(17, 0)

HOLIDAYS = frozenset(
    date.fromisoformat(d)
    for d in (
        "2025-01-01", "2025-01-09", "2025-01-20", "2025-02-17", "2025-04-18", "2025-05-26",
        "2025-06-19", "2025-07-04", "2025-09-01", "2025-11-27", "2025-12-25",
        "2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25", "2026-06-19",
        "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25",
        "2027-01-01", "2027-01-18", "2027-02-15", "2027-03-26", "2027-05-31", "2027-06-18",
        "2027-07-05", "2027-09-06", "2027-11-25", "2027-12-24",
    )
)  # fmt: skip
EARLY_CLOSES = frozenset(
    date.fromisoformat(d)
    for d in ("2025-07-03", "2025-11-28", "2025-12-24", "2026-11-27", "2026-12-24", "2027-11-26")
)

SESSIONS = ("pre_market", "regular", "after_hours", "closed")


def is_trading_day(d: date) -> bool:
    return d.weekday() < 5 and d not in HOLIDAYS


@lru_cache(maxsize=4096)
def hours(d: date) -> tuple[datetime, datetime, datetime, datetime]:
    """(pre-market open, open, close, after-hours close) of trading day d."""
    early = d in EARLY_CLOSES
    return (
        datetime.combine(d, PRE_OPEN, NY),
        datetime.combine(d, OPEN, NY),
        datetime.combine(d, EARLY_CLOSE if early else CLOSE, NY),
        datetime.combine(d, EARLY_POST_CLOSE if early else POST_CLOSE, NY),
    )


def session_at(now: datetime) -> str:
    ny = now.astimezone(NY)
    d = ny.date()
    if not is_trading_day(d):
        return "closed"
    pre, open_, close, post = hours(d)
    if ny < pre or ny >= post:
        return "closed"
    if ny < open_:
        return "pre_market"
    return "regular" if ny < close else "after_hours"


def trading_days(start: date, end: date) -> list[date]:
    out, d = [], start
    while d <= end:
        if is_trading_day(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def next_trading_day(d: date) -> date:
    d += timedelta(days=1)
    while not is_trading_day(d):
        d += timedelta(days=1)
    return d


def previous_trading_day(d: date) -> date:
    d -= timedelta(days=1)
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def _next(now: datetime, index: int) -> datetime:
    """The first session boundary ``hours(d)[index]`` strictly after now."""
    d = now.astimezone(NY).date()
    if not is_trading_day(d):
        d = next_trading_day(d)
    at = hours(d)[index]
    return at if at > now else hours(next_trading_day(d))[index]


def next_open(now: datetime) -> datetime:
    return _next(now, 1)


def next_close(now: datetime) -> datetime:
    return _next(now, 2)


def next_post_close(now: datetime) -> datetime:
    return _next(now, 3)


def last_close(now: datetime) -> datetime:
    """The last regular close at or before now."""
    d = now.astimezone(NY).date()
    if is_trading_day(d) and hours(d)[2] <= now:
        return hours(d)[2]
    return hours(previous_trading_day(d))[2]


def last_session_end(now: datetime) -> datetime:
    """When trading last stopped (the last after-hours close at or before now)."""
    d = now.astimezone(NY).date()
    if is_trading_day(d) and hours(d)[3] <= now:
        return hours(d)[3]
    return hours(previous_trading_day(d))[3]


def session_day(now: datetime) -> date:
    """The current trading day, or the last one when today is not a trading day."""
    d = now.astimezone(NY).date()
    return d if is_trading_day(d) else previous_trading_day(d)


def previous_close(now: datetime) -> datetime:
    """The regular close of the trading day before the current (or last) one: what a snapshot's
    ``prevDailyBar`` and a position's ``lastday_price`` close at."""
    return hours(previous_trading_day(session_day(now)))[2]

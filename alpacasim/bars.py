"""Historical bars from the random walk: timeframes, sessions and next_page_token pagination."""

from __future__ import annotations

import base64
import re
from datetime import datetime, time, timedelta

from . import errors, nyse
from .market import NY, UTC, Market, _h64

TIMEFRAME_RE = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_UNITS = {"T": "Min", "H": "Hour", "D": "Day", "W": "Week", "M": "Month"}


def parse_timeframe(text: str) -> tuple[int, str]:
    m = TIMEFRAME_RE.match(text or "")
    if not m:
        raise errors.SimError(400, errors.MALFORMED, f"invalid timeframe: {text!r}")
    n, unit = int(m.group(1)), _UNITS.get(m.group(2), m.group(2))
    limits = {"Min": 59, "Hour": 23, "Day": 1, "Week": 1, "Month": 12}
    if not 1 <= n <= limits[unit]:
        raise errors.SimError(400, errors.MALFORMED, f"invalid timeframe: {text!r}")
    return n, unit


def parse_ts(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        if len(value) == 10:
            return datetime.fromisoformat(value).replace(tzinfo=NY).astimezone(UTC)
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise errors.SimError(
            400, errors.MALFORMED, f"invalid {name}: {value!r}"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def session_times(width: float, start: datetime, end: datetime):
    """Epoch seconds, multiples of width in [start, end], within the sessions of trading days
    (04:00-20:00 ET, 17:00 on early closes): intraday bars and historical ticks."""
    t = -(-start.timestamp() // width) * width
    end_ts = end.timestamp()
    while t <= end_ts:
        ny = datetime.fromtimestamp(t, NY)
        d = ny.date()
        if not nyse.is_trading_day(d) or ny >= nyse.hours(d)[3]:
            nxt = nyse.hours(nyse.next_trading_day(d))[0]
            t = -(-nxt.timestamp() // width) * width
            continue
        if ny < nyse.hours(d)[0]:
            t = -(-nyse.hours(d)[0].timestamp() // width) * width
            continue
        yield t
        t += width


def session_times_desc(width: float, start: datetime, end: datetime):
    """``session_times`` newest first, lazily (for ``sort=desc`` pages)."""
    s_ts, e_ts = start.timestamp(), end.timestamp()
    d, first = end.astimezone(NY).date(), start.astimezone(NY).date()
    while d >= first:
        if nyse.is_trading_day(d):
            pre, _, _, post = nyse.hours(d)
            lo = -(-max(pre.timestamp(), s_ts) // width) * width
            hi = e_ts // width * width
            if hi >= post.timestamp():
                hi = (-(-post.timestamp() // width) - 1) * width
            while hi >= lo:
                yield hi
                hi -= width
        d -= timedelta(days=1)


def _bar_starts(n: int, unit: str, start: datetime, end: datetime, desc: bool = False):
    """Yield bar start times (UTC) in [start, end], oldest first (newest first if ``desc``)."""
    if unit in ("Min", "Hour"):
        width = n * (60 if unit == "Min" else 3600)
        for t in (session_times_desc if desc else session_times)(width, start, end):
            yield datetime.fromtimestamp(t, UTC), width
        return
    if desc:
        yield from reversed(list(_bar_starts(n, unit, start, end)))
        return
    d = start.astimezone(NY).date()
    if unit == "Week":
        d -= timedelta(days=d.weekday())
    elif unit == "Month":
        d = d.replace(day=1)
    while True:
        t0 = datetime.combine(d, time(0), NY)
        if t0 > end:
            return
        if unit == "Day":
            nxt = d + timedelta(days=1)
            width = daily_width(d)
        else:
            if unit == "Week":
                nxt = d + timedelta(days=7)
            else:
                months = d.month - 1 + n
                nxt = d.replace(
                    year=d.year + months // 12, month=months % 12 + 1, day=1
                )
            width = int(datetime.combine(nxt, time(0), NY).timestamp() - t0.timestamp())
        if t0 >= start and (unit != "Day" or nyse.is_trading_day(d)):
            yield t0.astimezone(UTC), width
        d = nxt


def daily_width(d) -> int:
    """A daily bar runs from midnight to the regular close (13:00 on early-close days)."""
    return int(nyse.hours(d)[2].timestamp() - datetime.combine(d, time(0), NY).timestamp())


def make_bar(market: Market, symbol: str, t0: datetime, width: int, price_at=None) -> dict:
    """OHLC from the walk (or from ``price_at(symbol, ts)``, e.g. the option model) over the bar."""
    price_at = price_at or market.price_at
    start = t0.timestamp()
    step = market.step
    o = price_at(symbol, start)
    c = price_at(symbol, start + max(0.0, width - step))
    h_ = _h64(f"{market.seed}:{symbol}:{int(start)}:{width}")
    mid_hi = price_at(symbol, start + width * 0.3)
    mid_lo = price_at(symbol, start + width * 0.7)
    hi = round(max(o, c, mid_hi, mid_lo) * (1 + (h_ % 1000) / 400000), 2)
    lo = round(min(o, c, mid_hi, mid_lo) * (1 - ((h_ >> 10) % 1000) / 400000), 2)
    volume = 100 * (1 + (h_ >> 20) % 5000) * max(1, width // 60)
    trades = 1 + (h_ >> 40) % 900
    return {
        "t": t0.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "o": o,
        "h": hi,
        "l": lo,
        "c": c,
        "v": volume,
        "n": trades,
        "vw": round((hi + lo + c) / 3, 4),
    }


def get_ticks(
    market: Market, symbols: list[str], query, page_max: int, render, quote_at=None
) -> tuple[dict[str, list[dict]], str | None]:
    """Historical quotes or trades: one per price step of the walk in the sessions of trading days,
    ``render(quote, iso_timestamp)`` shaping each; paginated like the bars."""
    now = datetime.fromtimestamp(market.clock.timestamp(), UTC)
    start = parse_ts(query.get("start"), "start") or datetime.combine(
        now.astimezone(NY).date(), time(0), NY
    ).astimezone(UTC)
    end = min(parse_ts(query.get("end"), "end") or now, now)
    try:
        limit = int(query.get("limit") or 1000)
    except ValueError:
        raise errors.SimError(400, errors.MALFORMED, "invalid limit") from None
    if not 1 <= limit <= 10000:
        raise errors.SimError(400, errors.MALFORMED, "invalid limit: must be between 1 and 10000")
    limit = min(limit, page_max)
    desc = _is_desc(query)
    token = query.get("page_token")
    from_symbol, from_t = decode_token(token) if token else (None, None)
    quote_at = quote_at or market.walk_quote
    times = session_times_desc if desc else session_times
    out: dict[str, list[dict]] = {}
    count = 0
    for symbol in sorted(symbols):
        if from_symbol and symbol < from_symbol:
            continue
        s_start, s_end = _span(start, end, from_t if from_symbol == symbol else None, desc)
        for t in times(max(1.0, market.step), s_start, s_end):
            t0 = datetime.fromtimestamp(t, UTC)
            if count >= limit:
                return out, encode_token(symbol, t0)
            ts = t0.strftime("%Y-%m-%dT%H:%M:%SZ")
            out.setdefault(symbol, []).append(render(quote_at(symbol, t), ts, int(t)))
            count += 1
    return out, None


def _is_desc(query) -> bool:
    sort = query.get("sort") or "asc"
    if sort not in ("asc", "desc"):
        raise errors.SimError(400, errors.MALFORMED, "invalid sort")
    return sort == "desc"


def _span(start: datetime, end: datetime, resume: datetime | None, desc: bool) -> tuple[datetime, datetime]:
    """A symbol's time range on this page: a page token resumes at its instant, the next one in the
    sort order (inclusive)."""
    if resume is None:
        return start, end
    return (start, resume) if desc else (resume, end)


def build_bar(
    market: Market, symbol: str, n: int, unit: str, t0: datetime, width: int, price_at=None
) -> dict | None:
    """One bar of the timeframe. n-minute bars aggregate the 1-minute bars, weekly and monthly bars the
    daily bars of their trading days (None if there are none), so coarser bars agree with finer ones."""
    if unit == "Min" and n > 1:
        parts = [
            make_bar(market, symbol, t0 + timedelta(minutes=i), 60, price_at)
            for i in range(n)
            if nyse.session_at(t0 + timedelta(minutes=i)) != "closed"
        ]
    elif unit in ("Week", "Month"):
        first = t0.astimezone(NY).date()
        last = datetime.fromtimestamp(t0.timestamp() + width - 1, NY).date()
        parts = [
            make_bar(market, symbol, datetime.combine(d, time(0), NY).astimezone(UTC), daily_width(d), price_at)
            for d in nyse.trading_days(first, last)
        ]
    else:
        return make_bar(market, symbol, t0, width, price_at)
    if not parts:
        return None
    volume = sum(p["v"] for p in parts)
    return {
        "t": t0.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "o": parts[0]["o"],
        "h": max(p["h"] for p in parts),
        "l": min(p["l"] for p in parts),
        "c": parts[-1]["c"],
        "v": volume,
        "n": sum(p["n"] for p in parts),
        "vw": round(sum(p["vw"] * p["v"] for p in parts) / volume, 4),
    }


def encode_token(symbol: str, t: datetime) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{int(t.timestamp())}".encode()).decode()


def decode_token(token: str) -> tuple[str, datetime]:
    try:
        symbol, ts = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return symbol, datetime.fromtimestamp(int(ts), UTC)
    except (ValueError, UnicodeDecodeError):
        raise errors.SimError(400, errors.MALFORMED, "invalid page_token") from None


def get_bars(
    market: Market, symbols: list[str], query, page_max: int, price_at=None
) -> tuple[dict[str, list[dict]], str | None]:
    n, unit = parse_timeframe(query.get("timeframe") or "")
    now = datetime.fromtimestamp(market.clock.timestamp(), UTC)
    start = parse_ts(query.get("start"), "start") or datetime.combine(
        now.astimezone(NY).date(), time(0), NY
    ).astimezone(UTC)
    end = parse_ts(query.get("end"), "end") or now
    end = min(end, now)
    try:
        limit = int(query.get("limit") or 1000)
    except ValueError:
        raise errors.SimError(400, errors.MALFORMED, "invalid limit") from None
    if limit < 1 or limit > 10000:
        raise errors.SimError(
            400, errors.MALFORMED, "invalid limit: must be between 1 and 10000"
        )
    limit = min(limit, page_max)
    desc = _is_desc(query)
    token = query.get("page_token")
    from_symbol, from_t = decode_token(token) if token else (None, None)
    out: dict[str, list[dict]] = {}
    count = 0
    for symbol in sorted(symbols):
        if from_symbol and symbol < from_symbol:
            continue
        s_start, s_end = _span(start, end, from_t if from_symbol == symbol else None, desc)
        for t0, width in _bar_starts(n, unit, s_start, s_end, desc):
            if count >= limit:
                return out, encode_token(symbol, t0)
            bar = build_bar(market, symbol, n, unit, t0, width, price_at)
            if bar is not None:
                out.setdefault(symbol, []).append(bar)
                count += 1
    return out, None

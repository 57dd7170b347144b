"""Prices and time: a seeded random walk per symbol, Black-Scholes options, OCC symbols and the clock.

The walk is a pure function of (seed, symbol, floor(t / step)): a sum of interpolated hashed noise
over dyadic time scales, which behaves like a random walk at every scale yet can be evaluated at any
instant in O(levels) without replaying history. The same seed therefore gives the same prices on every
server, and historical bars need no stored state.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from . import nyse

NY = ZoneInfo("America/New_York")
_MASK = (1 << 64) - 1
_LEVELS = 25  # 2**24 steps ~ 194 days at 1 s steps; beyond that the walk is bounded
_SECONDS_PER_YEAR = 365 * 86400  # the walk runs on wall time, 24/7
OCC_RE = re.compile(r"^([A-Z]{1,6})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")
STOCK_RE = re.compile(r"^[A-Z][A-Z0-9]{0,5}([./][A-Z]{1,2})?$")


def _h64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-distributed 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _gauss(key: int, idx: int) -> float:
    """Approximately N(0, 1): the sum of four 16-bit uniforms from one hash (Irwin-Hall)."""
    h = _mix(key ^ ((idx * 0xD6E8FEB86659FD93) & _MASK))
    s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48)
    return (s / 65535.0 - 2.0) * 1.7320508075688772


def floor_cent(x: float) -> float:
    return math.floor(x * 100 + 1e-9) / 100


def ceil_cent(x: float) -> float:
    return math.ceil(x * 100 - 1e-9) / 100


def iso_z(dt: datetime) -> str:
    """ISO-8601 UTC with microseconds and a Z suffix, as Alpaca timestamps."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class OptionSpec:
    symbol: str
    root: str
    expiration: date
    kind: str  # call | put
    strike: float


def parse_occ(symbol: str) -> OptionSpec | None:
    m = OCC_RE.match(symbol)
    if not m:
        return None
    root, yy, mm, dd, cp, strike = m.groups()
    try:
        exp = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        return None
    return OptionSpec(
        symbol, root, exp, "call" if cp == "C" else "put", int(strike) / 1000.0
    )


def occ_symbol(root: str, expiration: date, kind: str, strike: float) -> str:
    return f"{root}{expiration:%y%m%d}{'C' if kind == 'call' else 'P'}{round(strike * 1000):08d}"


def is_stock_symbol(symbol: str) -> bool:
    return bool(STOCK_RE.match(symbol))


@dataclass
class Quote:
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    last: float


def _ncdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _npdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def black_scholes(
    kind: str, s: float, k: float, t: float, r: float, vol: float
) -> dict:
    """Price and greeks. theta is per calendar day; vega and rho per 1 percentage point."""
    if t <= 0 or vol <= 0 or s <= 0:
        intrinsic = max(0.0, s - k) if kind == "call" else max(0.0, k - s)
        itm = intrinsic > 0
        delta = (1.0 if itm else 0.0) if kind == "call" else (-1.0 if itm else 0.0)
        return {
            "price": intrinsic,
            "delta": delta,
            "gamma": 0.0,
            "theta": 0.0,
            "vega": 0.0,
            "rho": 0.0,
        }
    sqt = math.sqrt(t)
    d1 = (math.log(s / k) + (r + 0.5 * vol * vol) * t) / (vol * sqt)
    d2 = d1 - vol * sqt
    disc = math.exp(-r * t)
    pdf = _npdf(d1)
    if kind == "call":
        price = s * _ncdf(d1) - k * disc * _ncdf(d2)
        delta = _ncdf(d1)
        theta = -s * pdf * vol / (2 * sqt) - r * k * disc * _ncdf(d2)
        rho = k * t * disc * _ncdf(d2)
    else:
        price = k * disc * _ncdf(-d2) - s * _ncdf(-d1)
        delta = _ncdf(d1) - 1.0
        theta = -s * pdf * vol / (2 * sqt) + r * k * disc * _ncdf(-d2)
        rho = -k * t * disc * _ncdf(-d2)
    return {
        "price": max(price, 0.0),
        "delta": delta,
        "gamma": pdf / (s * vol * sqt),
        "theta": theta / 365.0,
        "vega": s * pdf * sqt / 100.0,
        "rho": rho / 100.0,
    }


class MarketClock:
    """The NYSE calendar's sessions (see nyse.py), or forced always open / always closed."""

    def __init__(self, mode: str = "real") -> None:
        self.default_mode = mode
        self.reset()

    @property
    def follows_calendar(self) -> bool:
        return self.forced_open is None

    def session(self) -> str:
        """pre_market | regular | after_hours | closed."""
        if self.forced_open is not None:
            return "regular" if self.forced_open else "closed"
        return nyse.session_at(self.now())

    def price_timestamp(self) -> float:
        """The instant prices are read at: on the calendar, quotes stand still while it is closed."""
        ts = self.timestamp()
        if self.forced_open is not None:
            return ts
        second = int(ts)  # sessions change on whole seconds: one calendar lookup per second
        if self._frozen_at[0] != second:
            now = datetime.fromtimestamp(second, UTC)
            closed = nyse.session_at(now) == "closed"
            self._frozen_at = (second, nyse.last_session_end(now).timestamp() if closed else None)
        frozen = self._frozen_at[1]
        return ts if frozen is None else frozen

    def reset(self) -> None:
        self.forced_open: bool | None = {"open": True, "closed": False}.get(
            self.default_mode
        )
        self.fixed_now: datetime | None = None
        self._frozen_at: tuple[int, float | None] = (-1, None)
        self.next_open_override: datetime | None = None
        self.next_close_override: datetime | None = None

    def now(self) -> datetime:
        return self.fixed_now if self.fixed_now is not None else datetime.now(UTC)

    def timestamp(self) -> float:
        return self.fixed_now.timestamp() if self.fixed_now is not None else _wall()

    def is_open(self) -> bool:
        return self.session() == "regular"

    def as_json(self) -> dict:
        now = self.now()
        next_open = self.next_open_override or nyse.next_open(now)
        next_close = self.next_close_override or nyse.next_close(now)
        return {
            "timestamp": now.astimezone(NY).isoformat(timespec="microseconds"),
            "is_open": self.is_open(),
            "next_open": next_open.astimezone(NY).isoformat(),
            "next_close": next_close.astimezone(NY).isoformat(),
        }


def _wall() -> float:
    import time as _t

    return _t.time()


@dataclass
class Override:
    price: float
    bid: float | None = None
    ask: float | None = None


class Market:
    def __init__(
        self,
        seed: int,
        clock: MarketClock,
        step_seconds: float = 1.0,
        base_prices: dict[str, float] | None = None,
        illiquid: list[str] | None = None,
        risk_free_rate: float = 0.04,
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.step = step_seconds
        self.base_prices = dict(base_prices or {})
        self.initial_illiquid = set(illiquid or [])
        self.r = risk_free_rate
        self._params: dict[str, tuple[int, float, float]] = {}
        self._cache: dict[str, tuple[int, float]] = {}
        self.reset()

    def reset(self) -> None:
        self.overrides: dict[str, Override] = {}
        self.illiquid: set[str] = set(self.initial_illiquid)
        self._cache.clear()

    # --- stocks -------------------------------------------------------------------------------
    def _symbol_params(self, symbol: str) -> tuple[int, float, float]:
        p = self._params.get(symbol)
        if p is None:
            key = _h64(f"{self.seed}:{symbol}")
            sym_hash = _h64(symbol)  # base prices do not depend on the seed
            base = self.base_prices.get(symbol) or 20.0 + (sym_hash % 48000) / 100.0
            vol = 0.2 + (sym_hash >> 20) % 30 / 100.0
            p = (key, base, vol)
            self._params[symbol] = p
        return p

    def annual_vol(self, symbol: str) -> float:
        return self._symbol_params(symbol)[2]

    def _walk(self, symbol: str, k: int) -> float:
        key, base, vol = self._symbol_params(symbol)
        sigma = vol * math.sqrt(self.step / _SECONDS_PER_YEAR)
        w = 0.0
        for j in range(_LEVELS):
            span = 1 << j
            i, rem = divmod(k, span)
            lk = key + j * 0x632BE59BD9B4E019
            a = _gauss(lk, i)
            if rem:
                f = rem / span
                a += (_gauss(lk, i + 1) - a) * f
            w += a * math.sqrt(span) * 0.5
        return max(0.01, round(base * math.exp(sigma * w), 2))

    def price_at(self, symbol: str, ts: float) -> float:
        """Mid price of the walk at epoch seconds ``ts`` (overrides ignored)."""
        k = int(ts // self.step)
        cached = self._cache.get(symbol)
        if cached is not None and cached[0] == k:
            return cached[1]
        p = self._walk(symbol, k)
        self._cache[symbol] = (k, p)
        return p

    def stock_quote(self, symbol: str) -> Quote:
        ov = self.overrides.get(symbol)
        sizes = 1 + _h64(symbol) % 9
        if ov is not None:
            bid = ov.bid if ov.bid is not None else max(0.0, round(ov.price - 0.01, 2))
            ask = ov.ask if ov.ask is not None else round(ov.price + 0.01, 2)
            if symbol in self.illiquid:
                bid = 0.0
            return Quote(
                bid, ask, 0 if bid <= 0 else sizes * 100, sizes * 100, ov.price
            )
        return self.walk_quote(symbol, self.clock.price_timestamp())

    def walk_quote(self, symbol: str, ts: float) -> Quote:
        """The quote the walk gives at epoch seconds ts (overrides ignored): also historical quotes."""
        sizes = 1 + _h64(symbol) % 9
        mid = self.price_at(symbol, ts)
        half = max(0.005, mid * 0.0002)
        bid, ask = floor_cent(mid - half), ceil_cent(mid + half)
        if symbol in self.illiquid:
            bid = 0.0
        return Quote(bid, ask, 0 if bid <= 0 else sizes * 100, sizes * 100, mid)

    # --- options ------------------------------------------------------------------------------
    def option_vol(self, spec: OptionSpec, spot: float) -> float:
        base = self.annual_vol(spec.root)
        m = math.log(spec.strike / spot) if spot > 0 else 0.0
        return round(base * (1.0 + 0.6 * m * m + 0.05 * abs(m)), 6)

    def years_to_expiry(self, spec: OptionSpec) -> float:
        expiry = datetime.combine(spec.expiration, time(16, 0), NY).timestamp()
        return max(0.0, (expiry - self.clock.timestamp()) / (365.0 * 86400))

    def option_model(self, spec: OptionSpec) -> dict:
        spot = self.stock_quote(spec.root).last
        vol = self.option_vol(spec, spot)
        out = black_scholes(
            spec.kind, spot, spec.strike, self.years_to_expiry(spec), self.r, vol
        )
        out["iv"] = vol
        return out

    def option_price_at(self, spec: OptionSpec, ts: float) -> float:
        """The model price at epoch seconds ts from the walk of the root (overrides ignored)."""
        spot = self.price_at(spec.root, ts)
        expiry = datetime.combine(spec.expiration, time(16, 0), NY).timestamp()
        years = max(0.0, (expiry - ts) / (365.0 * 86400))
        vol = self.option_vol(spec, spot)
        return round(black_scholes(spec.kind, spot, spec.strike, years, self.r, vol)["price"], 2)

    def option_quote(self, spec: OptionSpec) -> Quote:
        size = 1 + _h64(spec.symbol) % 50
        ov = self.overrides.get(spec.symbol)
        if ov is not None:
            bid = ov.bid if ov.bid is not None else max(0.0, round(ov.price - 0.01, 2))
            ask = ov.ask if ov.ask is not None else round(ov.price + 0.01, 2)
            last = ov.price
        else:
            theo = self.option_model(spec)["price"]
            half = max(0.01, theo * 0.02)
            bid = max(0.0, floor_cent(theo - half))
            ask = max(0.01, ceil_cent(theo + half))
            last = round(theo, 2)
        if spec.symbol in self.illiquid:
            bid = 0.0
        return Quote(bid, ask, size if bid > 0 else 0, size, last)

    def quote(self, symbol: str) -> Quote:
        spec = parse_occ(symbol)
        return self.option_quote(spec) if spec else self.stock_quote(symbol)

    def chain(self, underlying: str) -> list[OptionSpec]:
        """The listed contracts: weekly and monthly expiries, strikes around the base price."""
        _, base, _ = self._symbol_params(underlying)
        inc = 1.0 if base < 50 else 2.5 if base < 100 else 5.0 if base < 500 else 10.0
        center = round(base / inc) * inc
        strikes = [center + i * inc for i in range(-6, 7) if center + i * inc > 0]
        today = self.clock.now().astimezone(NY).date()
        fridays = [
            today + timedelta(days=(4 - today.weekday()) % 7 + 7 * w) for w in range(4)
        ]
        monthly = []
        for months_ahead in (1, 2):
            y, m = (
                today.year + (today.month + months_ahead - 1) // 12,
                (today.month + months_ahead - 1) % 12 + 1,
            )
            first = date(y, m, 1)
            monthly.append(first + timedelta(days=(4 - first.weekday()) % 7 + 14))
        expiries = sorted(set(fridays + monthly))
        specs = {
            occ_symbol(underlying, e, kind, k): OptionSpec(
                occ_symbol(underlying, e, kind, k), underlying, e, kind, k
            )
            for e in expiries
            for kind in ("call", "put")
            for k in strikes
        }
        for sym in self.illiquid:
            spec = parse_occ(sym)
            if spec and spec.root == underlying:
                specs.setdefault(sym, spec)
        return sorted(specs.values(), key=lambda s: (s.expiration, s.kind, s.strike))

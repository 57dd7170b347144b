"""Market Data API handlers: /v2/stocks/... and /v1beta1/options/..."""

from __future__ import annotations

from datetime import datetime, time

from aiohttp import web

from . import errors, nyse
from .bars import daily_width, get_bars, get_ticks, make_bar
from .market import NY, UTC, OptionSpec, Quote, is_stock_symbol, iso_z, parse_occ
from .responses import SIM, json_response
from .serializers import quote_json, trade_json
from .trading import filter_contracts, paginate

MAX_SYMBOLS = 1000


def _bad_symbol(symbol: str) -> errors.SimError:
    return errors.SimError(400, errors.INVALID_SYMBOL, f"invalid symbol: {symbol}")


def _stock_symbols(request: web.Request) -> list[str]:
    raw = request.query.get("symbols")
    if not raw:
        raise errors.SimError(400, errors.MALFORMED, "missing symbols")
    symbols = [s.strip().upper() for s in raw.split(",") if s.strip()]
    if len(symbols) > MAX_SYMBOLS:
        raise errors.SimError(
            400, errors.MALFORMED, f"too many symbols (max {MAX_SYMBOLS})"
        )
    for s in symbols:
        if not is_stock_symbol(s):
            raise _bad_symbol(s)
    return symbols


def _option_specs(request: web.Request) -> list[OptionSpec]:
    raw = request.query.get("symbols")
    if not raw:
        raise errors.SimError(400, errors.MALFORMED, "missing symbols")
    specs = []
    for s in raw.split(","):
        spec = parse_occ(s.strip().upper())
        if spec is None:
            raise _bad_symbol(s)
        specs.append(spec)
    return specs


def _single(request: web.Request) -> str:
    symbol = request.match_info["symbol"].upper()
    if not is_stock_symbol(symbol):
        raise _bad_symbol(symbol)
    return symbol


def _quote(sim, symbol: str):
    if symbol in sim.broker.open_by_symbol:
        sim.broker.evaluate_symbol(symbol)
    return sim.market.quote(symbol)


def _now(sim) -> str:
    return iso_z(sim.clock.now())


async def latest_quotes(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    ts = _now(sim)
    quotes = {s: quote_json(_quote(sim, s), ts) for s in _stock_symbols(request)}
    return json_response({"quotes": quotes})


async def latest_quote(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    symbol = _single(request)
    return json_response(
        {"symbol": symbol, "quote": quote_json(_quote(sim, symbol), _now(sim))}
    )


def _trade_id(sim) -> int:
    return int(sim.clock.timestamp() * 1000)


async def latest_trades(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    ts = _now(sim)
    trades = {
        s: trade_json(_quote(sim, s), ts, trade_id=_trade_id(sim))
        for s in _stock_symbols(request)
    }
    return json_response({"trades": trades})


async def latest_trade(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    symbol = _single(request)
    return json_response(
        {
            "symbol": symbol,
            "trade": trade_json(
                _quote(sim, symbol), _now(sim), trade_id=_trade_id(sim)
            ),
        }
    )


def _minute_bar(sim, symbol: str) -> dict:
    now = sim.clock.timestamp()
    start = datetime.fromtimestamp(now // 60 * 60, UTC)
    return make_bar(sim.market, symbol, start, 60)


def _daily_bars(sim, symbol: str) -> tuple[dict, dict]:
    """The current (or last) session's daily bar and the previous session's."""
    d = datetime.fromtimestamp(sim.clock.timestamp(), NY).date()
    if not nyse.is_trading_day(d):
        d = nyse.previous_trading_day(d)
    prev = nyse.previous_trading_day(d)
    return tuple(
        make_bar(sim.market, symbol, datetime.combine(x, time(0), NY).astimezone(UTC), daily_width(x))
        for x in (d, prev)
    )


def _snapshot(sim, symbol: str) -> dict:
    ts = _now(sim)
    q = _quote(sim, symbol)
    day, prev_day = _daily_bars(sim, symbol)
    return {
        "latestTrade": trade_json(q, ts, trade_id=_trade_id(sim)),
        "latestQuote": quote_json(q, ts),
        "minuteBar": _minute_bar(sim, symbol),
        "dailyBar": day,
        "prevDailyBar": prev_day,
    }


async def snapshots(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return json_response({s: _snapshot(sim, s) for s in _stock_symbols(request)})


async def snapshot(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    symbol = _single(request)
    return json_response({"symbol": symbol, **_snapshot(sim, symbol)})


async def latest_bars(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return json_response(
        {"bars": {s: _minute_bar(sim, s) for s in _stock_symbols(request)}}
    )


def _historical(kind: str):
    render = (lambda q, ts, i: quote_json(q, ts)) if kind == "quotes" else (
        lambda q, ts, i: trade_json(q, ts, trade_id=i)
    )

    async def handler(request: web.Request) -> web.Response:
        sim = request.app[SIM]
        single = "symbol" in request.match_info
        symbols = [_single(request)] if single else _stock_symbols(request)
        out, token = get_ticks(sim.market, symbols, request.query, sim.config.bars_page_max, render)
        if single:
            return json_response(
                {"symbol": symbols[0], kind: out.get(symbols[0], []), "next_page_token": token}
            )
        return json_response({kind: out, "next_page_token": token})

    return handler


def _option_price_at(sim):
    def price_at(symbol: str, ts: float) -> float:
        return sim.market.option_price_at(parse_occ(symbol), ts)

    return price_at


async def option_bars(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    symbols = [s.symbol for s in _option_specs(request)]
    out, token = get_bars(
        sim.market, symbols, request.query, sim.config.bars_page_max, _option_price_at(sim)
    )
    return json_response({"bars": out, "next_page_token": token})


async def option_trades(request: web.Request) -> web.Response:
    """One trade per price step at the model price, like the stock trades."""
    sim = request.app[SIM]
    price_at = _option_price_at(sim)
    symbols = [s.symbol for s in _option_specs(request)]
    out, token = get_ticks(
        sim.market, symbols, request.query, sim.config.bars_page_max,
        lambda q, ts, i: trade_json(q, ts, option=True),
        lambda symbol, t: Quote(0.0, 0.0, 0, 0, price_at(symbol, t)),
    )
    return json_response({"trades": out, "next_page_token": token})


async def latest_bar(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    symbol = _single(request)
    return json_response({"symbol": symbol, "bar": _minute_bar(sim, symbol)})


# OPRA's participant codes, as /v1beta1/options/meta/exchanges lists them
OPTION_EXCHANGES = {
    "A": "AMEX - NYSE American", "B": "BOX - Boston Options Exchange",
    "C": "CBOE - Cboe Options Exchange", "D": "EMLD - MIAX Emerald",
    "E": "EDGO - Cboe EDGX Options", "H": "GMNI - Nasdaq GEMX", "I": "ISE - Nasdaq ISE",
    "J": "MRCY - Nasdaq MRX", "M": "MIAX - Miami International Securities Exchange",
    "N": "ARCO - NYSE Arca Options", "O": "OPRA - Options Price Reporting Authority",
    "P": "MPRL - MIAX Pearl", "Q": "NASD - Nasdaq Options Market", "S": "SPHR - MIAX Sapphire",
    "T": "BOSX - Nasdaq BX Options", "U": "MEMX - Members Exchange", "W": "C2 - Cboe C2",
    "X": "PHLX - Nasdaq PHLX", "Z": "BATO - Cboe BZX Options",
}  # fmt: skip


async def option_exchanges(request: web.Request) -> web.Response:
    return json_response(OPTION_EXCHANGES)


async def bars(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    out, token = get_bars(
        sim.market, _stock_symbols(request), request.query, sim.config.bars_page_max
    )
    return json_response({"bars": out, "next_page_token": token, "currency": "USD"})


async def bars_single(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    symbol = _single(request)
    out, token = get_bars(sim.market, [symbol], request.query, sim.config.bars_page_max)
    return json_response(
        {
            "symbol": symbol,
            "bars": out.get(symbol, []),
            "next_page_token": token,
            "currency": "USD",
        }
    )


# --- options -----------------------------------------------------------------------------------
def _option_quote(sim, spec: OptionSpec):
    if spec.symbol in sim.broker.open_by_symbol:
        sim.broker.evaluate_symbol(spec.symbol)
    return sim.market.option_quote(spec)


def _option_snapshot(sim, spec: OptionSpec, ts: str) -> dict:
    q = _option_quote(sim, spec)
    model = sim.market.option_model(spec)
    return {
        "latestQuote": quote_json(q, ts, option=True),
        "latestTrade": trade_json(q, ts, option=True),
        "impliedVolatility": model["iv"],
        "greeks": {
            k: round(model[k], 6) for k in ("delta", "gamma", "theta", "vega", "rho")
        },
    }


async def option_latest_quotes(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    ts = _now(sim)
    return json_response(
        {
            "quotes": {
                s.symbol: quote_json(_option_quote(sim, s), ts, option=True)
                for s in _option_specs(request)
            }
        }
    )


async def option_latest_trades(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    ts = _now(sim)
    return json_response(
        {
            "trades": {
                s.symbol: trade_json(_option_quote(sim, s), ts, option=True)
                for s in _option_specs(request)
            }
        }
    )


async def option_snapshots(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    ts = _now(sim)
    page, token = paginate(_option_specs(request), request.query, 100, 1000)
    return json_response(
        {
            "snapshots": {s.symbol: _option_snapshot(sim, s, ts) for s in page},
            "next_page_token": token,
        }
    )


async def option_chain(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    underlying = request.match_info["underlying"].upper()
    if not is_stock_symbol(underlying):
        raise _bad_symbol(underlying)
    specs = filter_contracts(sim, [underlying], request.query)
    page, token = paginate(specs, request.query, 100, 1000)
    ts = _now(sim)
    return json_response(
        {
            "snapshots": {s.symbol: _option_snapshot(sim, s, ts) for s in page},
            "next_page_token": token,
        }
    )


ROUTES = [
    ("GET", "/v2/stocks/quotes/latest", latest_quotes, "data_quotes"),
    ("GET", "/v2/stocks/trades/latest", latest_trades, "data_trades"),
    ("GET", "/v2/stocks/bars/latest", latest_bars, "data_bars"),
    ("GET", "/v2/stocks/snapshots", snapshots, "data_snapshots"),
    ("GET", "/v2/stocks/bars", bars, "data_bars"),
    ("GET", "/v2/stocks/{symbol}/quotes/latest", latest_quote, "data_quotes"),
    ("GET", "/v2/stocks/{symbol}/trades/latest", latest_trade, "data_trades"),
    ("GET", "/v2/stocks/{symbol}/bars", bars_single, "data_bars"),
    ("GET", "/v2/stocks/{symbol}/bars/latest", latest_bar, "data_bars"),
    ("GET", "/v2/stocks/quotes", _historical("quotes"), "data_quotes"),
    ("GET", "/v2/stocks/trades", _historical("trades"), "data_trades"),
    ("GET", "/v2/stocks/{symbol}/quotes", _historical("quotes"), "data_quotes"),
    ("GET", "/v2/stocks/{symbol}/trades", _historical("trades"), "data_trades"),
    ("GET", "/v1beta1/options/meta/exchanges", option_exchanges, "option_quotes"),
    ("GET", "/v1beta1/options/bars", option_bars, "option_bars"),
    ("GET", "/v1beta1/options/trades", option_trades, "option_trades"),
    ("GET", "/v2/stocks/{symbol}/snapshot", snapshot, "data_snapshots"),
    ("GET", "/v1beta1/options/quotes/latest", option_latest_quotes, "option_quotes"),
    ("GET", "/v1beta1/options/trades/latest", option_latest_trades, "option_trades"),
    ("GET", "/v1beta1/options/snapshots", option_snapshots, "option_snapshots"),
    ("GET", "/v1beta1/options/snapshots/{underlying}", option_chain, "option_chain"),
]

"""The control API under /_sim/: JSON, no auth (the server binds to 127.0.0.1 by default)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from aiohttp import web

from . import __version__, errors
from .accounts import Account
from .broker import to_bool, to_decimal
from .config import AccountSpec, check_pending_new
from .faults import parse_fault, parse_latency
from .margin import check_multiplier
from .market import UTC, Override, iso_z
from .responses import SIM, json_response, read_json
from .serializers import order_json


def _dt(value, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        raise errors.invalid(f"invalid {name}: {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


async def health(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return json_response(
        {
            "status": "ok",
            "version": __version__,
            "accounts": len(sim.broker.accounts),
            "seed": sim.config.seed,
        }
    )


async def state(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    accounts = []
    for acct in sim.broker.accounts.values():
        sim.broker.evaluate_account(acct)
        v = sim.broker.valuation(acct)
        accounts.append(
            {
                "api_key": acct.api_key,
                "account_number": acct.account_number,
                "paper": acct.paper,
                "status": acct.status,
                "options_level": acct.options_level,
                "cash": str(acct.cash),
                "buying_power": str(v["buying_power"]),
                "equity": str(v["equity"]),
                "positions": [
                    {
                        "symbol": p.symbol,
                        "qty": str(p.qty),
                        "avg_entry_price": str(p.avg_entry_price),
                        "asset_class": p.asset_class,
                    }
                    for p in acct.positions.values()
                ],
                "orders": [order_json(o) for o in acct.orders.values()],
            }
        )
    return json_response(
        {
            "accounts": accounts,
            "clock": sim.clock.as_json(),
            "overrides": {s: vars(o) for s, o in sim.market.overrides.items()},
            "illiquid": sorted(sim.market.illiquid),
            "faults": {r: vars(f) for r, f in sim.faults.rules.items()},
            "latency": {r: vars(s) for r, s in sim.latency.specs.items()},
            "rate_limit": {
                "enabled": sim.config.rate_limit_enabled,
                "per_minute": sim.limiter.per_minute,
            },
            "requests": dict(sim.requests),
        }
    )


async def reset(request: web.Request) -> web.Response:
    request.app[SIM].reset()
    return json_response({"status": "ok"})


def _float(value, name: str) -> float | None:
    d = to_decimal(value, name)
    return float(d) if d is not None else None


async def set_price(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    body = await read_json(request)
    symbol = str(body.get("symbol") or "").upper()
    if not symbol:
        raise errors.invalid("symbol is required")
    if "illiquid" in body:
        (
            sim.market.illiquid.add
            if to_bool(body["illiquid"], "illiquid")
            else sim.market.illiquid.discard
        )(symbol)
    if body.get("clear"):
        sim.market.overrides.pop(symbol, None)
    else:
        price = _float(body.get("price"), "price")
        bid, ask = _float(body.get("bid"), "bid"), _float(body.get("ask"), "ask")
        if price is None and (bid is not None and ask is not None):
            price = round((bid + ask) / 2, 4)
        if price is not None:
            if price <= 0:
                raise errors.invalid("price must be > 0")
            sim.market.overrides[symbol] = Override(price, bid, ask)
        elif "illiquid" not in body:
            raise errors.invalid(
                "price (or bid and ask, illiquid or clear) is required"
            )
    sim.market._cache.pop(symbol, None)
    sim.broker.evaluate_symbol(symbol)
    q = sim.market.quote(symbol)
    return json_response(
        {
            "symbol": symbol,
            "bid": q.bid,
            "ask": q.ask,
            "last": q.last,
            "illiquid": symbol in sim.market.illiquid,
        }
    )


async def clear_price(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    body = await read_json(request)
    symbol = str(body.get("symbol") or request.match_info.get("symbol") or "").upper()
    if symbol:
        sim.market.overrides.pop(symbol, None)
    else:
        sim.market.overrides.clear()
    return json_response({"status": "ok"})


async def set_clock(request: web.Request) -> web.Response:
    clock = request.app[SIM].clock
    body = await read_json(request)
    mode = body.get("mode")
    if mode == "real":  # the calendar, with no override; /_sim/reset restores the configured mode
        clock.reset()
        clock.forced_open = None
    elif mode in ("open", "closed"):
        clock.forced_open = mode == "open"
    elif mode is not None:
        raise errors.invalid("mode must be real, open or closed")
    if "is_open" in body:
        clock.forced_open = (
            None if body["is_open"] is None else to_bool(body["is_open"], "is_open")
        )
    if "now" in body:
        clock.fixed_now = _dt(body["now"], "now")
    if body.get("advance_seconds"):
        clock.fixed_now = clock.now() + timedelta(
            seconds=float(body["advance_seconds"])
        )
    if "next_open" in body:
        clock.next_open_override = _dt(body["next_open"], "next_open")
    if "next_close" in body:
        clock.next_close_override = _dt(body["next_close"], "next_close")
    request.app[SIM].broker.evaluate_all()
    return json_response(clock.as_json())


async def set_latency(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    route, spec = parse_latency(await read_json(request))
    if spec.distribution is None and spec.ms <= 0:
        sim.latency.specs.pop(route, None)
    else:
        sim.latency.specs[route] = spec
    return json_response({r: vars(s) for r, s in sim.latency.specs.items()})


async def clear_latency(request: web.Request) -> web.Response:
    request.app[SIM].latency.reset()
    return json_response({"status": "ok"})


async def set_fault(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    route, rule = parse_fault(await read_json(request))
    sim.faults.rules[route] = rule
    return json_response({r: vars(f) for r, f in sim.faults.rules.items()})


async def clear_faults(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    sim.faults.reset()
    sim.release_hangs()
    return json_response({"status": "ok"})


async def fill_order(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    body = await read_json(request)
    order = sim.broker.force_fill(
        request.match_info["order_id"], body.get("qty"), body.get("price")
    )
    return json_response(order_json(order))


async def upsert_account(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    body = await read_json(request)
    key = str(body.get("api_key") or "")
    if not key:
        raise errors.invalid("api_key is required")
    acct = sim.broker.accounts.get(key)
    if acct is None:
        if not body.get("secret_key"):
            raise errors.invalid("secret_key is required for a new account")
        spec = AccountSpec(
            api_key=key,
            secret_key=str(body["secret_key"]),
            paper=to_bool(body.get("paper", True), "paper"),
            cash=str(to_decimal(body.get("cash", "100000"), "cash")),
            account_number=body.get("account_number"),
            options_level=int(body.get("options_level", 3)),
            status=str(body.get("status", "ACTIVE")),
            multiplier=_multiplier(body.get("multiplier", 1)),
        )
        acct = Account.from_spec(spec)
        sim.broker.add_account(acct)
    else:
        if body.get("secret_key"):
            acct.secret_key = str(body["secret_key"])
        if "paper" in body:
            acct.paper = to_bool(body["paper"], "paper")
        if body.get("cash") is not None:
            acct.cash = Decimal(str(to_decimal(body["cash"], "cash")))
            sim.broker.record_holdings(acct)
        if body.get("account_number"):
            acct.account_number = str(body["account_number"])
        if body.get("options_level") is not None:
            acct.options_level = int(body["options_level"])
        if body.get("status"):
            acct.status = str(body["status"])
        if body.get("multiplier") is not None:
            acct.multiplier = _multiplier(body["multiplier"])
    return json_response(
        {
            "api_key": acct.api_key,
            "account_number": acct.account_number,
            "paper": acct.paper,
            "cash": str(acct.cash),
            "status": acct.status,
            "multiplier": acct.multiplier,
        }
    )


def _multiplier(value) -> int:
    try:
        return check_multiplier(value)
    except ValueError as exc:
        raise errors.invalid(str(exc)) from None


async def set_order_model(request: web.Request) -> web.Response:
    """Runtime knobs of the order model, until the next reset."""
    broker = request.app[SIM].broker
    body = await read_json(request)
    if body.get("pending_new_seconds") is not None:
        try:
            broker.pending_new_seconds = check_pending_new(body["pending_new_seconds"])
        except ValueError as exc:
            raise errors.invalid(str(exc)) from None
    return json_response({"pending_new_seconds": broker.pending_new_seconds})


async def set_rate_limit(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    body = await read_json(request)
    if "enabled" in body:
        sim.config.rate_limit_enabled = to_bool(body["enabled"], "enabled")
    if body.get("per_minute") is not None:
        sim.limiter.per_minute = int(body["per_minute"])
    sim.limiter.reset()
    return json_response(
        {"enabled": sim.config.rate_limit_enabled, "per_minute": sim.limiter.per_minute}
    )


async def sim_time(request: web.Request) -> web.Response:
    return json_response({"now": iso_z(request.app[SIM].clock.now())})


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim/health", health)
    r.add_get("/_sim/state", state)
    r.add_get("/_sim/time", sim_time)
    r.add_post("/_sim/reset", reset)
    r.add_post("/_sim/price", set_price)
    r.add_post("/_sim/price/clear", clear_price)
    r.add_delete("/_sim/price/{symbol}", clear_price)
    r.add_post("/_sim/clock", set_clock)
    r.add_post("/_sim/latency", set_latency)
    r.add_post("/_sim/latency/clear", clear_latency)
    r.add_post("/_sim/faults", set_fault)
    r.add_post("/_sim/faults/clear", clear_faults)
    r.add_post("/_sim/orders/{order_id}/fill", fill_order)
    r.add_post("/_sim/accounts", upsert_account)
    r.add_post("/_sim/rate_limit", set_rate_limit)
    r.add_post("/_sim/order_model", set_order_model)

"""Trading API handlers, mounted under /paper/v2 and /live/v2."""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta

from aiohttp import web

from . import errors, nyse
from .accounts import stable_uuid
from .broker import ZERO
from .history import portfolio_history
from .market import NY, is_stock_symbol, parse_occ
from .responses import SIM, json_response, read_json
from .serializers import (
    account_json,
    activity_json,
    asset_json,
    calendar_day,
    option_contract_json,
    order_json,
    position_json,
)


def _ctx(request: web.Request):
    return request.app[SIM], request["account"]


async def get_account(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    sim.broker.evaluate_account(acct)
    return json_response(account_json(acct, sim.broker.valuation(acct)))


async def get_account_configurations(request: web.Request) -> web.Response:
    return json_response(_configurations(request["account"]))


CONFIGURABLE = {
    "dtbp_check": ("both", "entry", "exit"), "trade_confirm_email": ("all", "none"),
    "suspend_trade": (True, False), "no_shorting": (True, False),
    "fractional_trading": (True, False), "pdt_check": ("both", "entry", "exit"),
    "ptp_no_exception_entry": (True, False), "disable_overnight_trading": (True, False),
}  # fmt: skip


async def patch_account_configurations(request: web.Request) -> web.Response:
    """Stored and echoed; `no_shorting` refuses short sales, the other keys are not read."""
    acct = request["account"]
    body = await read_json(request)
    for key, value in body.items():
        if key in CONFIGURABLE and value is not None:
            if value not in CONFIGURABLE[key]:
                raise errors.invalid(f"invalid {key}: {value!r}")
            acct.configurations[key] = value
    return json_response(_configurations(acct))


def _configurations(acct) -> dict:
    return {
            "dtbp_check": "entry",
            "trade_confirm_email": "all",
            "suspend_trade": False,
            "no_shorting": False,
            "fractional_trading": True,
            "max_margin_multiplier": str(acct.multiplier),
        "max_options_trading_level": acct.options_level,
        "pdt_check": "entry",
        "ptp_no_exception_entry": False,
        "disable_overnight_trading": False,
        **acct.configurations,
    }


async def get_portfolio_history(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    return json_response(portfolio_history(sim.broker, acct, request.query))


async def list_activities(request: web.Request) -> web.Response:
    """FILL and OPEXC activities, newest first unless direction=asc; page_token is the last id seen."""
    _, acct = _ctx(request)
    q = request.query
    types = {t.strip().upper() for t in (q.get("activity_types") or "").split(",") if t.strip()}
    if request.match_info.get("activity_type"):
        types = {request.match_info["activity_type"].upper()}
    direction = (q.get("direction") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise errors.invalid("direction must be asc or desc")
    try:
        page_size = int(q.get("page_size") or 100)
    except ValueError:
        raise errors.invalid("invalid page_size") from None
    if not 1 <= page_size <= 100:
        raise errors.invalid("page_size must be between 1 and 100")
    day = _date_param(q.get("date"), "date")
    items = [a for a in acct.activities if not types or a["activity_type"] in types]
    if day:
        items = [a for a in items if a["id"][:8] == f"{day:%Y%m%d}"]
    items.sort(key=lambda a: a["id"], reverse=direction == "desc")
    token = q.get("page_token")
    if token:
        items = [a for a in items if (a["id"] < token if direction == "desc" else a["id"] > token)]
    return json_response([activity_json(a) for a in items[:page_size]])


def _position_json(sim, acct, pos) -> dict:
    available = (
        max(ZERO, sim.broker.qty_available(acct, pos.symbol)) if pos.qty > 0 else pos.qty
    )
    return position_json(
        pos, sim.market.quote(pos.symbol), available, sim.broker.lastday_price(pos.symbol)
    )


async def exercise(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    sim.broker.exercise(acct, request.match_info["symbol"])
    return web.Response(status=204)


async def list_positions(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    return json_response(
        [_position_json(sim, acct, p) for p in sim.broker.positions(acct)]
    )


async def get_position(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    pos = sim.broker.position(acct, request.match_info["symbol"])
    return json_response(_position_json(sim, acct, pos))


async def close_position(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    q = request.query
    order = sim.broker.close_position(
        acct, request.match_info["symbol"], q.get("qty"), q.get("percentage")
    )
    return json_response(order_json(order))


async def close_all_positions(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    if request.query.get("cancel_orders", "").lower() == "true":
        sim.broker.cancel_all(acct)
    out = []
    for pos in list(sim.broker.positions(acct)):
        try:
            order = sim.broker.close_position(acct, pos.symbol)
            out.append(
                {
                    "symbol": pos.symbol,
                    "status": 200,
                    "order_id": order.id,
                    "body": order_json(order),
                }
            )
        except errors.SimError as exc:
            out.append(
                {
                    "symbol": pos.symbol,
                    "status": exc.status,
                    "body": {**exc.body(), "symbol": pos.symbol},
                }
            )
    return json_response(out, status=207)


async def submit_order(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    order = sim.broker.submit(acct, await read_json(request))
    return json_response(order_json(order))


def _nested(request: web.Request) -> bool:
    return request.query.get("nested", "").lower() == "true"


async def list_orders(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    nested = _nested(request)
    orders = sim.broker.list_orders(acct, request.query, nested)
    return json_response([order_json(o, nested) for o in orders])


async def replace_order(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    order = sim.broker.replace(
        acct, request.match_info["order_id"], await read_json(request)
    )
    return json_response(order_json(order))


async def get_order(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    return json_response(
        order_json(sim.broker.get_order(acct, request.match_info["order_id"]))
    )


async def get_order_by_client_id(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    coid = request.query.get("client_order_id")
    if not coid:
        raise errors.invalid("client_order_id is required")
    return json_response(order_json(sim.broker.get_by_client_id(acct, coid)))


async def cancel_order(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    sim.broker.cancel(acct, request.match_info["order_id"])
    return web.Response(status=204)


async def cancel_all_orders(request: web.Request) -> web.Response:
    sim, acct = _ctx(request)
    canceled = sim.broker.cancel_all(acct)
    return json_response(
        [{"id": o.id, "status": 200, "body": order_json(o)} for o in canceled],
        status=207,
    )


async def get_clock(request: web.Request) -> web.Response:
    return json_response(request.app[SIM].clock.as_json())


def _date_param(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise errors.invalid(f"invalid {name}: {value!r}") from None


async def get_calendar(request: web.Request) -> web.Response:
    today = datetime.now(NY).date()
    start = _date_param(request.query.get("start"), "start") or today - timedelta(
        days=30
    )
    end = _date_param(request.query.get("end"), "end") or today + timedelta(days=30)
    if end < start or (end - start).days > 3660:
        raise errors.invalid("invalid date range")
    return json_response([calendar_day(d) for d in nyse.trading_days(start, end)])


async def list_assets(request: web.Request) -> web.Response:
    q = request.query
    if q.get("asset_class") not in (None, "", "us_equity") or q.get("status") not in (
        None,
        "",
        "active",
    ):
        return json_response([])
    symbols = sorted(request.app[SIM].broker.universe)
    return json_response([asset_json(s) for s in symbols])


async def get_asset(request: web.Request) -> web.Response:
    """By symbol or by asset id, within the configured universe."""
    universe = request.app[SIM].broker.universe
    key = request.match_info["symbol"]
    symbol = key.upper()
    if symbol not in universe:
        symbol = next((s for s in universe if stable_uuid("asset", s) == key), "")
    if not symbol:
        raise errors.not_found(f"asset not found for {key}")
    return json_response(asset_json(symbol))


def _float(value: str | None, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise errors.invalid(f"invalid {name}") from None


def filter_contracts(sim, underlyings: list[str], q) -> list:
    kind = (q.get("type") or "").lower() or None
    exp = _date_param(q.get("expiration_date"), "expiration_date")
    exp_gte = _date_param(q.get("expiration_date_gte"), "expiration_date_gte")
    exp_lte = _date_param(q.get("expiration_date_lte"), "expiration_date_lte")
    k_gte = _float(q.get("strike_price_gte"), "strike_price_gte")
    k_lte = _float(q.get("strike_price_lte"), "strike_price_lte")
    root = (q.get("root_symbol") or "").upper() or None
    out = []
    for underlying in underlyings:
        for spec in sim.market.chain(underlying):
            if kind and spec.kind != kind or root and spec.root != root:
                continue
            if exp and spec.expiration != exp or exp_gte and spec.expiration < exp_gte:
                continue
            if exp_lte and spec.expiration > exp_lte:
                continue
            if (
                k_gte is not None
                and spec.strike < k_gte
                or k_lte is not None
                and spec.strike > k_lte
            ):
                continue
            out.append(spec)
    return out


def paginate(items: list, q, default: int, maximum: int) -> tuple[list, str | None]:
    try:
        limit = min(int(q.get("limit") or default), maximum)
        offset = (
            int(base64.urlsafe_b64decode(q["page_token"]).decode())
            if q.get("page_token")
            else 0
        )
    except (ValueError, UnicodeDecodeError):
        raise errors.SimError(
            400, errors.MALFORMED, "invalid limit or page_token"
        ) from None
    page = items[offset : offset + max(1, limit)]
    more = offset + len(page) < len(items)
    token = (
        base64.urlsafe_b64encode(str(offset + len(page)).encode()).decode()
        if more
        else None
    )
    return page, token


async def list_option_contracts(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    q = request.query
    underlyings = [
        s.strip().upper()
        for s in (q.get("underlying_symbols") or "").split(",")
        if s.strip()
    ]
    if not underlyings:
        root = (q.get("root_symbol") or "").upper()
        underlyings = [root] if root else ["AAPL", "SPY"]
    if q.get("status") not in (None, "", "active"):
        return json_response({"option_contracts": [], "next_page_token": None})
    specs = filter_contracts(sim, [u for u in underlyings if is_stock_symbol(u)], q)
    page, token = paginate(specs, q, 100, 10000)
    return json_response(
        {
            "option_contracts": [option_contract_json(s, sim.market) for s in page],
            "next_page_token": token,
        }
    )


async def get_option_contract(request: web.Request) -> web.Response:
    """By OCC symbol, or by contract id among the listed chains of the universe."""
    sim = request.app[SIM]
    key = request.match_info["symbol"]
    spec = parse_occ(key.upper())
    if spec is None:
        spec = next(
            (
                s
                for root in sorted(sim.broker.universe)
                for s in sim.market.chain(root)
                if stable_uuid("option", s.symbol) == key
            ),
            None,
        )
    if spec is None:
        raise errors.not_found("option contract not found")
    return json_response(option_contract_json(spec, sim.market))


ROUTES = [
    ("GET", "/account", get_account, "account"),
    ("GET", "/account/configurations", get_account_configurations, "account"),
    ("PATCH", "/account/configurations", patch_account_configurations, "account"),
    ("GET", "/account/activities", list_activities, "activities"),
    ("GET", "/account/portfolio/history", get_portfolio_history, "portfolio_history"),
    ("GET", "/account/activities/{activity_type}", list_activities, "activities"),
    ("POST", "/positions/{symbol}/exercise", exercise, "position_exercise"),
    ("GET", "/positions", list_positions, "positions"),
    ("DELETE", "/positions", close_all_positions, "positions_close_all"),
    ("GET", "/positions/{symbol}", get_position, "position_get"),
    ("DELETE", "/positions/{symbol}", close_position, "position_close"),
    ("POST", "/orders", submit_order, "orders"),
    ("GET", "/orders", list_orders, "orders_list"),
    ("DELETE", "/orders", cancel_all_orders, "cancel_all"),
    ("GET", "/orders:by_client_order_id", get_order_by_client_id, "order_by_client_id"),
    ("GET", "/orders/{order_id}", get_order, "order_get"),
    ("PATCH", "/orders/{order_id}", replace_order, "order_replace"),
    ("DELETE", "/orders/{order_id}", cancel_order, "order_cancel"),
    ("GET", "/clock", get_clock, "clock"),
    ("GET", "/calendar", get_calendar, "calendar"),
    ("GET", "/assets", list_assets, "assets"),
    ("GET", "/assets/{symbol}", get_asset, "assets"),
    ("GET", "/options/contracts", list_option_contracts, "option_contracts"),
    ("GET", "/options/contracts/{symbol}", get_option_contract, "option_contracts"),
]

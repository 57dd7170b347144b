"""The aiohttp application: routing, and one middleware for auth, rate limit, latency and faults."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from aiohttp import web

from . import control, data, errors, streams, trading
from .accounts import Account, generated_spec
from .broker import Broker
from .config import SimConfig
from .faults import FAULT_CODES, Faults, Latency, RateLimiter
from .market import Market, MarketClock
from .responses import SIM, error_response, json_response

log = logging.getLogger("alpacasim")


class Simulator:
    """All mutable state of one server."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = MarketClock(config.clock_mode)
        self.market = Market(
            config.seed,
            self.clock,
            step_seconds=config.price_step_seconds,
            base_prices=config.base_prices,
            illiquid=config.illiquid,
            risk_free_rate=config.risk_free_rate,
        )
        self.broker = Broker(
            self.market,
            config.seed,
            config.partial_fill_rate,
            config.partial_fill_delay_seconds,
            universe=frozenset(config.symbols) | frozenset(config.base_prices),
        )
        self.limiter = RateLimiter(config.rate_limit_per_minute)
        self.faults = Faults(config.seed)
        self.latency = Latency(config.seed)
        self.hang_release = asyncio.Event()
        self.route_info: dict[object, tuple[str, str]] = {}
        self.requests: Counter[str] = Counter()  # API requests by route name, /_sim/state "requests"
        self.streams = streams.StreamHub(self)
        self.reset()

    def account_specs(self):
        specs = list(self.config.accounts)
        specs += [
            generated_spec(i) for i in range(1, self.config.generated_accounts + 1)
        ]
        return specs

    def reset(self) -> None:
        self.broker.accounts.clear()
        self.broker.reset_state()
        self.broker.pending_new_seconds = self.config.pending_new_seconds
        for spec in self.account_specs():
            self.broker.add_account(Account.from_spec(spec))
        self.market.reset()
        self.clock.default_mode = self.config.clock_mode  # /_sim/clock {"mode": ...} lasts until a reset
        self.clock.reset()
        self.limiter.reset()
        self.requests.clear()
        self.faults.reset()
        self.latency.reset()
        self.streams.reset()
        self.release_hangs()

    def release_hangs(self) -> None:
        self.hang_release.set()
        self.hang_release = asyncio.Event()

    async def hang(self) -> web.Response:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.hang_release.wait(), self.config.hang_seconds)
        code, message = FAULT_CODES[504]
        return json_response({"code": code, "message": message}, status=504)


@web.middleware
async def api_middleware(request: web.Request, handler) -> web.StreamResponse:
    sim = request.app[SIM]
    info = sim.route_info.get(request.match_info.route)
    if info is None:  # the control API, or no route at all
        try:
            return await handler(request)
        except errors.SimError as exc:
            return error_response(exc)
        except web.HTTPNotFound:
            return error_response(errors.not_found("endpoint not found"))
        except web.HTTPMethodNotAllowed:
            return json_response(
                {"code": 40510000, "message": "method not allowed"}, status=405
            )
    name, scope = info
    sim.requests[name] += 1
    headers = request.headers
    acct = sim.broker.authenticate(
        headers.get("APCA-API-KEY-ID"), headers.get("APCA-API-SECRET-KEY")
    )
    if (
        acct is None
        or (scope == "paper" and not acct.paper)
        or (scope == "live" and acct.paper)
    ):
        return error_response(errors.unauthorized())
    rl_headers = None
    if sim.config.rate_limit_enabled:
        allowed, rl_headers = sim.limiter.hit(acct.api_key)
        if not allowed:
            return json_response(
                {"code": errors.RATE_LIMITED, "message": "rate limit exceeded"},
                status=429,
                headers=rl_headers,
            )
    delay = sim.latency.delay(name)
    if delay > 0:
        await asyncio.sleep(delay)
    fault = sim.faults.pick(name)
    if fault is not None:
        if fault.hang:
            return await sim.hang()
        code, message = FAULT_CODES[fault.status]
        fh = dict(rl_headers or {})
        if fault.status == 429:
            fh.update({"X-Ratelimit-Remaining": "0", "Retry-After": "1"})
            fh.setdefault("X-Ratelimit-Limit", str(sim.config.rate_limit_per_minute))
        return json_response(
            {"code": code, "message": message}, status=fault.status, headers=fh
        )
    request["account"] = acct
    try:
        resp = await handler(request)
    except errors.SimError as exc:
        resp = error_response(exc)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        resp = json_response(
            {"code": errors.INTERNAL, "message": "internal server error"}, status=500
        )
    if rl_headers:
        resp.headers.update(rl_headers)
    return resp


def _add(
    app: web.Application,
    sim: Simulator,
    method: str,
    path: str,
    handler,
    name: str,
    scope: str,
) -> None:
    route = app.router.add_route(method, path, handler)
    sim.route_info[route] = (name, scope)


async def _sweeper(app: web.Application) -> None:
    sim = app[SIM]
    while True:
        await asyncio.sleep(0.5)
        try:
            sim.broker.evaluate_all()
        except Exception:  # the sweep must never die
            log.exception("order sweep failed")


async def _start_sweeper(app: web.Application):
    task = asyncio.create_task(_sweeper(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    app[SIM].release_hangs()


def build_app(config: SimConfig) -> web.Application:
    app = web.Application(middlewares=[api_middleware], client_max_size=1024 * 1024)
    sim = Simulator(config)
    app[SIM] = sim
    for scope in ("paper", "live"):
        for method, path, handler, name in trading.ROUTES:
            _add(app, sim, method, f"/{scope}/v2{path}", handler, name, scope)
    for method, path, handler, name in data.ROUTES:
        _add(app, sim, method, path, handler, name, "data")
    control.register(app)
    streams.register(app)
    app.cleanup_ctx.append(_start_sweeper)
    return app
